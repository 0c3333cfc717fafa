"""Arena: side-by-side evaluation of language models."""

from arena.celery import app as celery_app

__all__ = ["celery_app"]
