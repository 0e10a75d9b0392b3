"""Enough file descriptors for a run, checked before it starts.

Every in-flight request holds a socket, and the connection pool keeps up to the highest
concurrency of them open between rounds; the metrics scrapes, the result files and the modules
the reports import need more.  A run that hits the limit midway loses requests to EMFILE, so the
soft limit (``ulimit -n``) is raised toward the hard limit when it is too low, and a run that
cannot get enough is refused up front with one line.  ``plan_limit`` is the pure decision.
"""

from __future__ import annotations

from drbench.errors import UsageError

__all__ = ["FD_MARGIN", "ensure_fd_limit", "fds_needed", "plan_limit"]

FD_MARGIN = 64  # stdio, result files, the preflight session, imports, DNS, the event loop


def fds_needed(in_flight: int, metrics_urls: int = 0) -> int:
    """Descriptors a run may hold at once with ``in_flight`` requests (a metrics URL: 2)."""
    return in_flight + 2 * metrics_urls + FD_MARGIN


def plan_limit(
    concurrency: int, metrics_urls: int, soft: int, hard: int, infinity: int, prompts: int = 0
) -> int | None:
    """The soft limit to set: None when ``soft`` suffices; UsageError when ``hard`` is too low.

    Raised to the hard limit when that is finite (the most this process may get), else to what
    the run needs.  With ``prompts`` (how many a round sends), no more than that are in flight.
    """
    needed = fds_needed(_in_flight(concurrency, prompts), metrics_urls)
    if soft == infinity or soft >= needed:
        return None
    if hard != infinity and hard < needed:
        raise _too_few(concurrency, needed, soft, hard)
    return needed if hard == infinity else hard


def ensure_fd_limit(concurrency: int, metrics_urls: int = 0, prompts: int = 0) -> None:
    """Raise RLIMIT_NOFILE's soft limit if a run at ``concurrency`` needs it, or refuse the run."""
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:  # Windows: no such limit to check
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = plan_limit(concurrency, metrics_urls, soft, hard, resource.RLIM_INFINITY, prompts)
    if target is None:
        return
    needed = fds_needed(_in_flight(concurrency, prompts), metrics_urls)
    for value in dict.fromkeys((target, needed)):  # some systems cap below an infinite hard limit
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
            return
        except (ValueError, OSError):
            continue
    raise _too_few(concurrency, needed, soft, hard)


def _in_flight(concurrency: int, prompts: int) -> int:
    return min(concurrency, prompts) if prompts > 0 else concurrency


def _too_few(concurrency: int, needed: int, soft: int, hard: int) -> UsageError:
    return UsageError(
        f"--concurrency {concurrency} needs about {needed} open files but this process may "
        f"open {soft} (ulimit -n; hard limit {hard}); lower --concurrency or raise ulimit -n "
        f"to at least {needed}"
    )
