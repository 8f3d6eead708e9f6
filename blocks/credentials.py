"""Credential blocks for the clouds strataflow deploys to.

An environment names a block (`clouds.aws.credentials: aws-dev`); the component task loads
it and hands the backend a plain dict of SecretStr values, so a secret is never logged,
never part of a task's parameters and never written to state.
"""

from __future__ import annotations

from typing import Any, cast

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class AwsDeployCredentials(Block):
    """Static AWS keys for one account (prefer a worker's role or profile where you can)."""

    _block_type_name = "Strata AWS Credentials"
    _block_type_slug = "strata-aws-credentials"
    _description = "AWS access keys strataflow deploys one environment's components with."

    aws_access_key_id: str = Field(description="The access key id.")
    aws_secret_access_key: SecretStr = Field(description="The secret access key.")
    aws_session_token: SecretStr | None = Field(default=None, description="A session token, for temporary credentials.")

    def as_credentials(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "aws_access_key_id": self.aws_access_key_id,
            "aws_secret_access_key": self.aws_secret_access_key,
        }
        if self.aws_session_token is not None:
            found["aws_session_token"] = self.aws_session_token
        return found


class AzureDeployCredentials(Block):
    """An Azure service principal (client secret) for one subscription."""

    _block_type_name = "Strata Azure Credentials"
    _block_type_slug = "strata-azure-credentials"
    _description = "The Azure service principal strataflow deploys one environment's components with."

    tenant_id: str = Field(description="The Microsoft Entra tenant id.")
    client_id: str = Field(description="The application (client) id of the service principal.")
    client_secret: SecretStr = Field(description="The client secret of the service principal.")

    def as_credentials(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "client_id": self.client_id, "client_secret": self.client_secret}


_BLOCKS: dict[str, type[AwsDeployCredentials] | type[AzureDeployCredentials]] = {
    "aws": AwsDeployCredentials,
    "azure": AzureDeployCredentials,
}


def load_credentials(cloud: str, name: str | None) -> dict[str, Any]:
    """The credentials in block ``name`` for ``cloud``; empty (the default chain) when no block is named."""
    if not name:
        return {}
    block = cast(AwsDeployCredentials | AzureDeployCredentials, _BLOCKS[cloud].load(name))
    return block.as_credentials()
