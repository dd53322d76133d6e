"""Sessions in the database, as Django keeps them, but a database outage while one
is saved stays an outage (a 503, see batchsvc.api.errors).

Django's store turns any database error on updating a session into UpdateError,
which SessionMiddleware answers 400, "the session was deleted": right for a session
deleted by a concurrent logout, wrong when the database is away.
"""

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import UpdateError

from batchsvc.ops.outages import DATABASE_ERRORS


class SessionStore(db.SessionStore):
    def save(self, must_create=False):
        try:
            super().save(must_create=must_create)
        except UpdateError as exc:
            if isinstance(exc.__context__, DATABASE_ERRORS):
                raise exc.__context__  # noqa: B904 (it is the error; UpdateError hid it)
            raise
