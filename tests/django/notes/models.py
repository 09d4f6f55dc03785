from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=100, unique=True)
    body = models.TextField(default="")


class Counter(models.Model):
    name = models.CharField(max_length=50, unique=True)
    value = models.IntegerField(default=0)


class Tag(models.Model):
    """Added by migration 0002, which the tests leave unapplied."""

    label = models.CharField(max_length=20)
