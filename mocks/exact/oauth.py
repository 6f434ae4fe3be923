"""Exact Online's OAuth 2.0: apps, authorization codes, access and refresh tokens (reference §2.11).

An authorization code lives 3 minutes and serves once; an access token lives 10 minutes; a refresh token
lives 30 days, serves once, and is refused while the access token it came with is younger than 9 minutes
30 seconds ("Access token not expired"). Token errors are OAuth's own body, not the OData one. Free of
HTTP: the token route in `routes` reads the form and answers.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from mocks.common.clock import MockClock
from mocks.exact.errors import BadRequest, ExactError, Unauthorized

__all__ = ["ACCESS_TOKEN_SECONDS", "Client", "OAuthServer", "TokenError"]

ACCESS_TOKEN_SECONDS = 600
EARLY_REFRESH_SECONDS = 570
CODE_SECONDS = 180
REFRESH_TOKEN_DAYS = 30


@dataclass
class Client:
    client_id: str
    secret: str
    redirect_uris: list[str]


@dataclass
class _Code:
    client_id: str
    user_id: str
    redirect_uri: str
    expires_at: datetime


@dataclass
class _Access:
    user_id: str
    client_id: str
    expires_at: datetime


@dataclass
class _Refresh:
    user_id: str
    client_id: str
    access_issued_at: datetime
    expires_at: datetime


class TokenError(ExactError):
    """An OAuth token-endpoint error: ``{"error": ..., "error_description": ...}``, not the OData body."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(status, description or error)
        self.error = error
        self.description = description


class OAuthServer:
    """The apps one Exact server knows and the codes and tokens it has handed out."""

    def __init__(self, clock: MockClock, lock: threading.RLock) -> None:
        self.clock = clock
        self.lock = lock
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, _Code] = {}
        self.access_tokens: dict[str, _Access] = {}
        self.refresh_tokens: dict[str, _Refresh] = {}


    def register(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        """An app, as registered in Exact's app centre: its id, its secret, where its codes may go."""
        with self.lock:
            self.clients[client_id] = Client(client_id, secret, redirect_uris)

    def authorize(self, client_id: str, redirect_uri: str, user_id: str) -> str:
        """A user (the one who logged in) grants an app access: a code for its redirect URI."""
        with self.lock:
            client = self.clients.get(client_id)
            if client is None or redirect_uri not in client.redirect_uris:
                raise BadRequest("invalid_request")
            code = "XTzM!" + secrets.token_urlsafe(24)
            self.codes[code] = _Code(client_id, user_id, redirect_uri,
                                     self.clock.now() + timedelta(seconds=CODE_SECONDS))
            return code

    def _check_client(self, client_id: str, secret: str) -> None:
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            raise TokenError(400, "invalid_request", None)

    def exchange_code(self, client_id: str, secret: str, code: str, redirect_uri: str) -> dict[str, str]:
        with self.lock:
            self._check_client(client_id, secret)
            grant = self.codes.pop(code, None)
            if grant is None or grant.client_id != client_id or grant.expires_at < self.clock.now():
                raise TokenError(400, "invalid_grant",
                                  "Token is not allowed, because of invalid or empty chainId")
            if grant.redirect_uri != redirect_uri:
                raise TokenError(400, "invalid_request", "redirect_uri does not match")
            return self._issue(grant.user_id, client_id)

    def refresh(self, client_id: str, secret: str, refresh_token: str) -> dict[str, str]:
        with self.lock:
            self._check_client(client_id, secret)
            now = self.clock.now()
            grant = self.refresh_tokens.get(refresh_token)
            if grant is None or grant.client_id != client_id:
                raise TokenError(400, "invalid_grant",
                                  "Token is not allowed, because of invalid or empty chainId")
            if grant.expires_at < now:
                self.refresh_tokens.pop(refresh_token, None)
                raise TokenError(
                    400, "invalid_request",
                    f"The refresh token expired at {grant.expires_at:%m/%d/%Y %I:%M:%S %p} and it is now "
                    f"{now:%m/%d/%Y %I:%M:%S %p}.",
                )
            if now - grant.access_issued_at < timedelta(seconds=EARLY_REFRESH_SECONDS):
                raise TokenError(401, "invalid_request", "Access token not expired")
            del self.refresh_tokens[refresh_token]
            return self._issue(grant.user_id, client_id)

    def _issue(self, user_id: str, client_id: str) -> dict[str, str]:
        now = self.clock.now()
        access = "AAEAA" + secrets.token_urlsafe(32)
        refresh = "Gcp7!" + secrets.token_urlsafe(32)
        self.access_tokens[access] = _Access(user_id, client_id, now + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        self.refresh_tokens[refresh] = _Refresh(user_id, client_id, now, now + timedelta(days=REFRESH_TOKEN_DAYS))
        return {"access_token": access, "token_type": "bearer", "expires_in": str(ACCESS_TOKEN_SECONDS),
                "refresh_token": refresh}

    def app_for_token(self, token: str) -> str | None:
        """The client id behind a valid access token, for rate limiting per app."""
        with self.lock:
            grant = self.access_tokens.get(token)
            return grant.client_id if grant is not None and grant.expires_at > self.clock.now() else None

    def user_for_token(self, token: str) -> str:
        """The user id behind a valid access token; 401 with Exact's WWW-Authenticate otherwise."""
        with self.lock:
            grant = self.access_tokens.get(token)
            if grant is None:
                raise Unauthorized("Unauthorized", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if grant.expires_at <= self.clock.now():
                raise Unauthorized("Unauthorized",
                    {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="access token expired"'},
                )
            return grant.user_id
