-- litefs_is_primary(), litefs_primary(), litefs_config(): values and errors.
.bail off
.mode list
.load ./litefs_guard
.open app.db
SELECT 'primary:', litefs_is_primary(), quote(litefs_primary());
SELECT 'config:', json_extract(litefs_config(), '$.role'), json_extract(litefs_config(), '$.marker'),
       json_extract(litefs_config(), '$.mount_source'), quote(json_extract(litefs_config(), '$.config_file')),
       json_extract(litefs_config(), '$.vfs'), json_extract(litefs_config(), '$.immediate');
.shell echo node-b.internal > .primary
SELECT 'replica:', litefs_is_primary(), quote(litefs_primary());
SELECT 'config:', json_extract(litefs_config(), '$.role'), json_extract(litefs_config(), '$.primary'),
       json_extract(litefs_config(), '$.reason');
.shell echo > .primary
SELECT 'replica, no primary known:', litefs_is_primary(), quote(litefs_primary());
.shell rm .primary
SELECT 'errors follow';
SELECT litefs_is_primary(1);
SELECT litefs_primary('/etc/passwd');
SELECT litefs_config('xml');
SELECT litefs_config(42);
SELECT litefs_config('json', 'yaml');
SELECT litefs_config('yaml');
CREATE TABLE t(x);
CREATE VIEW v AS SELECT litefs_is_primary();
SELECT * FROM v;
-- LiteFS not running: the mount directory is gone under an open connection.
.shell rm -rf /tmp/lfg-golden-mount && mkdir /tmp/lfg-golden-mount
.open /tmp/lfg-golden-mount/app.db
CREATE TABLE t(x);
INSERT INTO t VALUES (1);
.shell rm -rf /tmp/lfg-golden-mount
SELECT litefs_is_primary();
SELECT litefs_primary();
SELECT 'not running:', json_extract(litefs_config(), '$.role'), json_extract(litefs_config(), '$.reason');
INSERT INTO t VALUES (2);
SELECT 'reads still work:', count(*) FROM t;
