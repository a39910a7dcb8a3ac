"""The fetch path: what an app server gets for (prompt, label) or (prompt, version).

A fetch resolves once, then every server process reads the serialized
response from Redis. A warm fetch is one `MGET` of three keys:

    pr:k:<sha256(secret)>          the API key's verdict: "r" may read, "n" may not, "x" unknown/revoked
    pr:g:<prompt>                  the prompt's generation token
    pr:e:<prompt>:l:<label>        an entry: generation, status, ETag, experiment block, body
    pr:e:<prompt>:v:<number>

An entry is valid only while its generation equals the prompt's current one.
Anything that changes what a fetch returns (label move, rollback, new version,
retirement) sends `serving_changed` after commit, which sets a fresh generation:
every entry of that prompt is stale at once, in every process. A reader that
resolved from the database before the change writes its entry with a small Lua
script that checks the generation it read first, so it can never put a stale
payload back after the invalidation.

Without Redis (REDIS_URL unset, or unreachable) every fetch resolves from the
database: slower, still correct. There are no per-process caches of prompts.
An invalidation that cannot reach Redis is written down (`PendingInvalidation`)
and retried by beat every few seconds until it lands, so a rollback made while
Redis blinked is served within seconds of Redis answering again, not after the
entries' TTL.

A/B seam: a label entry may carry an experiment block (JSON). `set_experiment_router`
lets the experiments code say, on a cache miss, which block a (prompt, label)
has, and how a session id picks a variant's (ETag, body) from the block, which
is arithmetic on cached data: no database work on a warm fetch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.test.signals import setting_changed
from django.utils import timezone

from promptreg.models import LATEST, ApiKey, Prompt, PromptVersion, Scope, hash_secret
from promptreg.signals import serving_changed
from rollout.models import PendingInvalidation

log = logging.getLogger(__name__)

ENTRY_TTL = 600  # seconds; a last bound on staleness, should an invalidation never reach Redis
KEY_TTL = 300
UNKNOWN_KEY_TTL = 30
REDIS_TIMEOUT = 0.25
RETRY_REDIS_AFTER = 2.0  # seconds to serve from the database after Redis failed, before trying it again
SEP = b"\x1f"

# Verdicts on an API key for fetching.
CAN_READ, NO_READ, UNKNOWN_KEY = b"r", b"n", b"x"


@dataclass(frozen=True)
class Entry:
    """A resolved fetch: status, ETag and JSON body (or an experiment block to pick them from)."""

    status: int
    etag: str
    body: bytes
    experiment: dict | None = None

    def pack(self, generation: bytes) -> bytes:
        block = json.dumps(self.experiment, separators=(",", ":")).encode() if self.experiment else b""
        return SEP.join((generation, str(self.status).encode(), self.etag.encode(), block, self.body))

    @classmethod
    def unpack(cls, raw: bytes) -> tuple[bytes, Entry]:
        generation, status, etag, block, body = raw.split(SEP, 4)
        return generation, cls(int(status), etag.decode(), body, json.loads(block) if block else None)

    def for_session(self, session_id: str | None) -> tuple[str, bytes]:
        """The (ETag, body) this session gets: the experiment's variant when one is running."""
        if self.experiment is not None and _experiment_assign is not None:
            return _experiment_assign(self.experiment, session_id)
        return self.etag, self.body


# --- A/B seam (filled in by the experiments code) ----------------------------

ExperimentResolve = Callable[[Prompt, str, PromptVersion], "dict | None"]
ExperimentAssign = Callable[[dict, "str | None"], "tuple[str, bytes]"]
_experiment_resolve: ExperimentResolve | None = None
_experiment_assign: ExperimentAssign | None = None


def set_experiment_router(resolve: ExperimentResolve, assign: ExperimentAssign) -> None:
    """`resolve(prompt, label, version)` returns the JSON block of a running experiment on
    that label (or None), built with `payload()`/`encode()` for each variant; `assign(block,
    session_id)` returns the (ETag, body) of the session's variant, without I/O."""
    global _experiment_resolve, _experiment_assign
    _experiment_resolve, _experiment_assign = resolve, assign


# --- Building responses ---------------------------------------------------------


def payload(version: PromptVersion, label: str | None, experiment: dict | None = None) -> dict[str, Any]:
    """The fetch response for a version (the public contract's fields first, then extras)."""
    prompt = version.prompt
    return {
        "name": prompt.name,
        "version": version.number,
        "label": label,
        "type": version.kind,
        "prompt": version.body,
        "config": version.config,
        "variables": version.variables,
        "experiment": experiment,
        "labels": sorted(version.labels.values_list("name", flat=True)),
        "prompt_type": prompt.prompt_type,
        "commit_message": version.commit_message,
        "created_at": version.created_at.isoformat(),
    }


def encode(data: dict[str, Any], status: int = 200) -> Entry:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"' if status == 200 else ""
    return Entry(status, etag, body)


def _error(status: int, code: str, message: str) -> Entry:
    return encode({"error": {"code": code, "message": message}}, status)


def resolve(name: str, label: str | None, version: int | None) -> Entry:
    """Resolve a fetch from the database. Unknown or retired prompts resolve to error entries,
    which are cached like any other (a publish or restore invalidates them)."""
    prompt = Prompt.objects.filter(name=name).first()
    if prompt is None:
        return _error(404, "prompt_not_found", f"No prompt named '{name}'.")
    if prompt.is_retired:
        return _error(410, "prompt_retired", f"'{name}' is retired and no longer served; restore it to serve it again.")
    if version is not None:
        found = prompt.versions.filter(number=version).first()
        if found is None:
            return _error(404, "version_not_found", f"'{name}' has no version {version}.")
        return encode(payload(found, None))
    found = prompt.label_version(label)
    if found is None:
        hint = " (it has no versions yet)" if label == LATEST else ""
        return _error(404, "label_not_found", f"'{name}' has no label '{label}'{hint}.")
    entry = encode(payload(found, label))
    if _experiment_resolve is not None:
        block = _experiment_resolve(prompt, label, found)
        if block is not None:
            return Entry(entry.status, entry.etag, entry.body, block)
    return entry


def key_verdict(secret: str) -> bytes:
    return verdict_for(ApiKey.find(secret))


def verdict_for(key: ApiKey | None) -> bytes:
    if key is None or key.revoked_at is not None:
        return UNKNOWN_KEY
    return CAN_READ if key.has_scope(Scope.READ) else NO_READ


# --- Redis ------------------------------------------------------------------------

_client: redis.Redis | None = None
_redis_down_until = 0.0
_WRITE_IF_CURRENT = """
if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def client() -> redis.Redis | None:
    """The process's Redis client (a connection pool), or None in embedded mode."""
    global _client
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
    return _client


def _usable_client() -> redis.Redis | None:
    """The client, unless Redis failed in the last few seconds (then don't wait on it per request)."""
    if _redis_down_until and time.monotonic() < _redis_down_until:
        return None
    return client()


def _mark_down(exc: Exception) -> None:
    global _redis_down_until
    _redis_down_until = time.monotonic() + RETRY_REDIS_AFTER
    log.warning("Redis unavailable, serving from the database: %s", exc)


_local = threading.local()


def _mget(r: redis.Redis, *keys: str) -> list[bytes | None]:
    """MGET on a connection of this thread's own: the hot path skips the pool's locking and
    redis-py's per-command wrappers (a third of a warm fetch's CPU). Holds no data."""
    owner, connection = getattr(_local, "connection", (None, None))
    if owner is not r:
        connection = r.connection_pool.make_connection()
        _local.connection = (r, connection)
    try:
        connection.send_command("MGET", *keys)
        return connection.read_response()
    except BaseException:
        connection.disconnect()
        _local.connection = (None, None)
        raise


def _keys(name: str, label: str | None, version: int | None, secret: str) -> tuple[str, str, str]:
    where = f"v:{version}" if version is not None else f"l:{label}"
    return "pr:k:" + hash_secret(secret), "pr:g:" + name, f"pr:e:{name}:{where}"


def fetch(secret: str, name: str, label: str | None, version: int | None) -> tuple[bytes, Entry | None]:
    """The key's verdict and, if it may read, the entry: from Redis in one round trip when warm."""
    r = _usable_client()
    if r is None:
        verdict = key_verdict(secret)
        return verdict, resolve(name, label, version) if verdict == CAN_READ else None
    key_k, gen_k, entry_k = _keys(name, label, version, secret)
    try:
        verdict, generation, raw = _mget(r, key_k, gen_k, entry_k)
        if verdict is None:
            verdict = key_verdict(secret)
            cache_verdict(r, key_k, verdict)
        if verdict != CAN_READ:
            return verdict, None
        generation = generation or b""
        if raw is not None:
            entry_generation, entry = Entry.unpack(raw)
            if entry_generation == generation:
                return verdict, entry
        entry = resolve(name, label, version)
        store(r, gen_k, entry_k, generation, entry)
        return verdict, entry
    except redis.RedisError as exc:
        _mark_down(exc)
        verdict = key_verdict(secret)
        return verdict, resolve(name, label, version) if verdict == CAN_READ else None


def cache_verdict(r: redis.Redis, key_k: str, verdict: bytes) -> bool:
    """Cache what a reader found in the database; NX, so that a change committed meanwhile
    (its verdict is written by `remember_api_key`) is never overwritten by an older look-up."""
    return bool(r.set(key_k, verdict, ex=KEY_TTL if verdict != UNKNOWN_KEY else UNKNOWN_KEY_TTL, nx=True))


def store(r: redis.Redis, gen_k: str, entry_k: str, generation: bytes, entry: Entry) -> bool:
    """Cache `entry` only if the prompt is still at the generation read before resolving it."""
    return bool(r.eval(_WRITE_IF_CURRENT, 2, gen_k, entry_k, generation, entry.pack(generation), ENTRY_TTL))


# --- Invalidation ---------------------------------------------------------------


def _new_generation(name: str) -> bool:
    """Give the prompt a fresh generation: every cached entry of it is stale, in every process."""
    r = client()
    if r is None:
        return True
    try:
        r.set("pr:g:" + name, secrets.token_hex(8))
        return True
    except redis.RedisError as exc:
        log.error("Could not invalidate the serving cache for %r (retried by beat): %s", name, exc)
        return False


def invalidate_prompt(name: str) -> None:
    """Invalidate now or, when Redis cannot be reached, write the debt down for `invalidations_retry`."""
    if not _new_generation(name):
        PendingInvalidation.objects.update_or_create(prompt_name=name, defaults={"since": timezone.now()})


def invalidations_retry() -> int:
    """Invalidate every prompt whose invalidation has not reached Redis yet (what beat runs); returns
    how many landed. A change that failed again meanwhile moved `since` on, so its record stays."""
    landed = 0
    for pending in PendingInvalidation.objects.all():
        if _new_generation(pending.prompt_name):
            PendingInvalidation.objects.filter(pk=pending.pk, since=pending.since).delete()
            landed += 1
    return landed


def remember_api_key(secret_hash: str, verdict: bytes) -> None:
    """Write a key's verdict as of a committed change (issue, scope change, revocation). A plain
    SET overrides whatever a concurrent reader cached from before the change (readers use NX)."""
    r = client()
    if r is None:
        return
    try:
        r.set("pr:k:" + secret_hash, verdict, ex=KEY_TTL)
    except redis.RedisError as exc:
        log.error("Could not update a cached API key verdict (it expires within %ss): %s", KEY_TTL, exc)


@receiver(serving_changed)
def _on_serving_changed(sender, prompt_name: str, **kwargs) -> None:
    invalidate_prompt(prompt_name)


@receiver(post_save, sender=ApiKey)
def _on_api_key_saved(sender, instance: ApiKey, **kwargs) -> None:
    transaction.on_commit(partial(remember_api_key, instance.secret_hash, verdict_for(instance)))


@receiver(post_delete, sender=ApiKey)
def _on_api_key_deleted(sender, instance: ApiKey, **kwargs) -> None:
    transaction.on_commit(partial(remember_api_key, instance.secret_hash, UNKNOWN_KEY))


@receiver(setting_changed)
def _on_setting_changed(setting: str, **kwargs) -> None:
    global _client, _redis_down_until
    if setting == "REDIS_URL":
        _client, _redis_down_until = None, 0.0
