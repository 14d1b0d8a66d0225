"""TOKEN_AUTHENTICATOR recipes of docs/clients.rst, run against the real libraries by tests/test_tokens_thirdparty.py."""
from __future__ import annotations


# simplejwt: HYPERGEN_WS = {"TOKEN_AUTHENTICATOR": "myproject.auth.simplejwt_user"}
def simplejwt_user(token):
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(token)
        return auth.get_user(validated), validated["exp"]  # the socket closes with 4401 at "exp"
    except (InvalidToken, TokenError):
        return None


# DRF's TokenAuthentication: HYPERGEN_WS = {"TOKEN_AUTHENTICATOR": "myproject.auth.drf_token_user"}
def drf_token_user(key):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None else None
