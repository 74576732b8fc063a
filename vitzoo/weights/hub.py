"""The only module that talks to ``huggingface_hub``: file downloads through its cache, errors made actionable.

Environment variables are read at call time (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE``, ``HF_TOKEN``),
so setting them after ``import vitzoo`` works.

When the Hub cannot be reached, ``hf_hub_download`` retries every file with exponential backoff (about 25 s per
file) before it falls back to the cache. ``download`` instead asks once, without retries, whether the endpoint
answers at all; if it does not, every candidate file is looked up in the cache only, so an offline machine gets
the cached file, or the error, within a second.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import huggingface_hub as hf
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors

from ..errors import HubError, UnknownModelError

_TRUE = {"1", "ON", "YES", "TRUE"}


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: only the cache is read."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT


_REPO_PART = re.compile(r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?")  # huggingface_hub's rule for each part


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` when it is a valid Hub repo id (``org/name`` or ``name``), else ``UnknownModelError`` saying how
    to write one (huggingface_hub would raise its own validation error from deep inside a download)."""
    parts = repo_id.split("/")
    if len(parts) > 2 or "--" in repo_id or ".." in repo_id or not all(_REPO_PART.fullmatch(p) for p in parts):
        raise UnknownModelError(
            f"{repo_id!r} is not a Hub repo id: write hf-hub:ORG/NAME (letters, digits, '-', '_' and '.')"
        )
    return repo_id


def _reachable(repo_id: str, filename: str, revision: str | None) -> Exception | None:
    """``None`` when the Hub answers (any HTTP status), else the connection error; one request, no retries."""
    url = hf.hf_hub_url(repo_id, filename, revision=revision, endpoint=_endpoint())
    try:
        hf.get_hf_file_metadata(url)
    except hf_errors.HfHubHTTPError:
        return None  # the server answered (404, 401, ...): hf_hub_download reports it properly below
    except Exception as err:  # connection refused, DNS failure, timeout: the client's transport errors vary
        return err
    return None


def download(
    repo_id: str, filenames: Sequence[str], *, revision: str | None = None, local_dir: str | Path | None = None
) -> Path:
    """Fetch the first of ``filenames`` that ``repo_id`` has (preference order) and return its local path.

    Uses ``hf_hub_download`` and its cache (concurrent processes share one copy under a file lock); with
    ``HF_HUB_OFFLINE=1``, or when the Hub does not answer, nothing more goes over the network and only the cache
    is read.
    """
    path = _first_of(repo_id, filenames, revision, local_dir)
    if path is None:
        where = f"{repo_id}" + (f"@{revision}" if revision else "")
        raise HubError(f"{where} has none of the files {list(filenames)}")
    return path


def download_if_present(
    repo_id: str, filename: str, *, revision: str | None = None, local_dir: str | Path | None = None
) -> Path | None:
    """``download`` of one optional file: None when the repo has no such file (errors as ``download`` otherwise);
    offline too, once a download has found it missing (the cache records that)."""
    return _first_of(repo_id, [filename], revision, local_dir)


def _first_of(
    repo_id: str, filenames: Sequence[str], revision: str | None, local_dir: str | Path | None
) -> Path | None:
    """The first of ``filenames`` the repo has, or None; HubError when it cannot be had (unreachable and not
    cached, gated, missing repo or revision)."""
    kw: dict[str, Any] = {"revision": revision, "endpoint": _endpoint()}
    if os.environ.get("HF_HUB_CACHE"):
        kw["cache_dir"] = os.environ["HF_HUB_CACHE"]
    if local_dir is not None:
        kw["local_dir"] = str(local_dir)
    unreachable = None if offline() else _reachable(repo_id, filenames[0], revision)
    kw["local_files_only"] = offline() or unreachable is not None
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    for name in filenames:
        try:
            return Path(hf.hf_hub_download(repo_id, name, **kw))
        except hf_errors.LocalEntryNotFoundError as err:  # offline or no connection, and not in the cache
            if local_dir is None and _known_missing(repo_id, name, revision, kw.get("cache_dir")):
                continue  # the Hub said so when it was asked, and the cache remembers: as if online
            unreachable = unreachable or err  # a later (less preferred) file may still be cached
        except hf_errors.EntryNotFoundError:
            pass  # the repo has no such file: try the next name
        except hf_errors.GatedRepoError as err:
            raise HubError(
                f"{repo_id} is a gated repo: accept its terms on the Hub page, then set HF_TOKEN "
                "(or run `hf auth login`) and retry"
            ) from err
        except hf_errors.RepositoryNotFoundError as err:
            raise HubError(
                f"Hub repo {repo_id!r} not found (or private: set HF_TOKEN); check the name with "
                "`vitzoo list --pretrained`"
            ) from err
        except hf_errors.RevisionNotFoundError as err:
            raise HubError(f"revision {revision!r} not found in {repo_id}; use a branch, tag or commit it has") from err
        except hf_errors.HfHubHTTPError as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status in (401, 403):
                raise HubError(f"not authorised to read {where} (HTTP {status}): set HF_TOKEN") from err
            raise HubError(f"Hub request for {where}/{name} failed: {err}") from err
    if unreachable is not None:
        reason = "HF_HUB_OFFLINE=1 is set" if offline() else f"the Hub at {kw['endpoint']} cannot be reached"
        cache = kw.get("cache_dir") or hf_constants.HF_HUB_CACHE
        raise HubError(
            f"{reason} and {where} has no cached copy of {list(filenames)} in {cache}. Connect to the network, "
            "point HF_ENDPOINT at a mirror, set HF_HUB_CACHE to a cache that has it, or prefetch on a connected "
            "machine with `vitzoo download NAME` and copy the cache"
        ) from unreachable
    return None  # the repo has none of them


def _known_missing(repo_id: str, filename: str, revision: str | None, cache_dir: str | None) -> bool:
    """The cache records that the repo has no such file (huggingface_hub's ``.no_exist`` marker, written when a
    download found it missing), so an optional file is missing offline as it was online."""
    found = hf.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    return found is hf._CACHED_NO_EXIST
