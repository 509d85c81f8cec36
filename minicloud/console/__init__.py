"""The management console: a web UI served at /_minicloud/console/ that acts through the same
providers as the AWS APIs (see ``app.py``)."""
