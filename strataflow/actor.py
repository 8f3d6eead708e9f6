"""Who acts: recorded in history and checked against approvers."""

from __future__ import annotations

import getpass
import os

CI_ACTOR_VARIABLES = (
    "GITHUB_ACTOR",
    "GITLAB_USER_LOGIN",
    "BUILD_REQUESTEDFOREMAIL",
    "BUILDKITE_BUILD_CREATOR",
    "CIRCLE_USERNAME",
    "BITBUCKET_STEP_TRIGGERER_UUID",
)


def resolve_actor(explicit: str | None = None) -> str:
    """``--as NAME`` where given, else STRATA_ACTOR, else the CI's actor variable, else the OS user."""
    if explicit:
        return explicit
    for variable in ("STRATA_ACTOR", *CI_ACTOR_VARIABLES):
        value = os.environ.get(variable)
        if value:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
