"""Prefect blocks: cloud credentials and the issue tracker.

Register them with `prefect block register -m blocks` (or `strata blocks register`).
Blocks hold configuration and build clients' settings; they hold no workflow logic.
"""

from blocks.credentials import AwsDeployCredentials, AzureDeployCredentials, load_credentials
from blocks.issues import GitHubIssueTracker

__all__ = ["AwsDeployCredentials", "AzureDeployCredentials", "GitHubIssueTracker", "load_credentials"]
