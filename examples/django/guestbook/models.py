from django.db import models


class Guest(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self):
        return self.name


class Entry(models.Model):
    guest = models.ForeignKey(Guest, on_delete=models.CASCADE, related_name="entries")
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "entries"

    def __str__(self):
        return f"{self.guest}: {self.text}"

    def as_json(self):
        return {"id": self.pk, "name": self.guest.name, "text": self.text}
