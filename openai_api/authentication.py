"""The API token as the openai SDK sends it (``Authorization: Bearer <token>``), or as
the rest of the API takes it (``Token <token>``)."""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

KEYWORDS = (b"bearer", b"token")


class BearerOrTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in KEYWORDS:
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: give one token after Bearer."
            )
        try:
            token = auth[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                "Invalid token: it should not contain invalid characters."
            ) from None
        return self.authenticate_credentials(token)
