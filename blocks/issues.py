"""The issue tracker a failed promotion reports to: GitHub's REST API (or one that speaks it)."""

from __future__ import annotations

from typing import Any

import httpx
from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class GitHubIssueTracker(Block):
    """Opens an issue when a promotion fails, reusing the open one for the same target."""

    _block_type_name = "Strata GitHub Issue Tracker"
    _block_type_slug = "strata-github-issue-tracker"
    _description = "Where strataflow opens an issue when a promotion fails."

    repository: str = Field(description="owner/name of the repository issues are opened in.")
    token: SecretStr = Field(description="A token allowed to read and write the repository's issues.")
    labels: list[str] = Field(default_factory=lambda: ["strataflow"], description="Labels put on every issue.")
    api_url: str = Field(
        default="https://api.github.com", description="The REST API root (GitHub Enterprise: https://HOST/api/v3)."
    )
    timeout: float = Field(default=20.0, description="Seconds before a request gives up.")

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url.rstrip("/"),
            timeout=self.timeout,
            headers={
                "Authorization": f"Bearer {self.token.get_secret_value()}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )

    def report(self, title: str, body: str) -> dict[str, Any]:
        """Open an issue titled ``title``, or comment on the open one that already has it.

        Returns ``{"number", "url", "created"}``.
        """
        with self._client() as client:
            existing = self._find_open(client, title)
            if existing is not None:
                response = client.post(
                    f"/repos/{self.repository}/issues/{existing['number']}/comments", json={"body": body}
                )
                response.raise_for_status()
                return {"number": existing["number"], "url": existing.get("html_url"), "created": False}
            response = client.post(
                f"/repos/{self.repository}/issues", json={"title": title, "body": body, "labels": self.labels}
            )
            response.raise_for_status()
            created = response.json()
            return {"number": created["number"], "url": created.get("html_url"), "created": True}

    def _find_open(self, client: httpx.Client, title: str) -> dict[str, Any] | None:
        page = 1
        while page <= 10:
            response = client.get(
                f"/repos/{self.repository}/issues",
                params={"state": "open", "labels": ",".join(self.labels), "per_page": 100, "page": page},
            )
            response.raise_for_status()
            issues = response.json()
            for issue in issues:
                if issue.get("title") == title and "pull_request" not in issue:
                    return dict(issue)
            if len(issues) < 100:
                return None
            page += 1
        return None
