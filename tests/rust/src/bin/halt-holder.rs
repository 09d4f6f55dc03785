//! Holds LiteFS's halt lock (a POSIX write lock on byte 72 of `NAME-lock`)
//! like `litefs run -with-halt-lock-on` does, until stdin closes.
//! Usage: `halt-holder DB`; prints "locked" once held.

use std::io::{Read, Write};

fn main() {
    let db = std::env::args().nth(1).expect("usage: halt-holder DB");
    let _lock = litefs_guard_tests::take_halt_lock(std::path::Path::new(&db)).expect("halt lock");
    println!("locked");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
