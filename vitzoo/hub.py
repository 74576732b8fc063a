"""The only module that talks to ``huggingface_hub``: file downloads through its cache, errors made actionable.

Environment variables are read at call time (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE``, ``HF_TOKEN``),
so setting them after ``import vitzoo`` works.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import HubError

_TRUE = {"1", "ON", "YES", "TRUE"}


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _kwargs(revision: str | None, cache_dir: str | Path | None) -> dict:
    kw: dict = {"revision": revision}
    if os.environ.get("HF_ENDPOINT"):
        kw["endpoint"] = os.environ["HF_ENDPOINT"]
    cache = cache_dir or os.environ.get("HF_HUB_CACHE")
    if cache:
        kw["cache_dir"] = str(cache)
    if offline():
        kw["local_files_only"] = True
    return kw


def download(
    repo_id: str,
    filenames: Sequence[str],
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_dir: str | Path | None = None,
) -> Path:
    """Fetch the first of ``filenames`` that ``repo_id`` has (preference order) and return its local path.

    Uses ``hf_hub_download`` and its cache (concurrent processes share one copy under a file lock); with
    ``HF_HUB_OFFLINE=1`` nothing goes over the network and only the cache is read.
    """
    import huggingface_hub as hf
    from huggingface_hub import errors as hf_errors

    kw = _kwargs(revision, cache_dir)
    if local_dir is not None:
        kw["local_dir"] = str(local_dir)
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    unreachable: Exception | None = None
    for name in filenames:
        try:
            return Path(hf.hf_hub_download(repo_id, name, **kw))
        except hf_errors.LocalEntryNotFoundError as err:  # offline or no connection, and not in the cache
            unreachable = err  # a later (less preferred) file may still be cached
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
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        reason = "HF_HUB_OFFLINE=1 is set" if offline() else f"the Hub at {endpoint} cannot be reached"
        cache = kw.get("cache_dir") or hf.constants.HF_HUB_CACHE
        raise HubError(
            f"{reason} and {where} has no cached copy of {list(filenames)} in {cache}. Connect to the network, "
            "point HF_ENDPOINT at a mirror, set HF_HUB_CACHE to a cache that has it, or prefetch on a connected "
            "machine with `vitzoo download NAME` and copy the cache"
        ) from unreachable
    raise HubError(f"{where} has none of the files {list(filenames)}")
