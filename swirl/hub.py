"""Hugging Face Hub helpers: fail fast, in one line, before any work when the Hub cannot be used."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from swirl.errors import HubUnavailableError


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def ensure_hub_reachable(timeout: float = 5.0, need_token: bool = True) -> None:
    """Raise :class:`HubUnavailableError` unless the Hub answers and (optionally) a token is configured.

    Called before a job that ends with a push, so an offline machine learns it at once rather than after
    hours of work. Any HTTP answer (even an error status) counts as reachable.
    """
    what_to_do = "run without --push-to-hub (results are saved locally) and push later from a connected machine"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise HubUnavailableError(f"HF_HUB_OFFLINE is set, so nothing can be pushed; {what_to_do}")
    endpoint = hub_endpoint()
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        pass  # the server answered
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HubUnavailableError(f"cannot reach the Hugging Face Hub at {endpoint} ({reason}); {what_to_do}") from None
    if need_token:
        from huggingface_hub import get_token

        if get_token() is None:
            raise HubUnavailableError("no Hugging Face token found: run `hf auth login` or set HF_TOKEN before pushing")
