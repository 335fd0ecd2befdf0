"""The parts of GitHub webhook payloads vram-check reads, validated with pydantic (unknown keys ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_COMMENT_CHARS = 65_536  # GitHub's limit on a comment body; a longer one is not a GitHub delivery
MAX_LOGIN_CHARS = 64  # GitHub logins are at most 39 characters; bots add "[bot]"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Installation(_Loose):
    id: int


class Repository(_Loose):
    full_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class User(_Loose):
    login: str = Field(min_length=1, max_length=MAX_LOGIN_CHARS)
    type: str = "User"

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.endswith("[bot]")


class Ref(_Loose):
    ref: str
    sha: str


class PullRequest(_Loose):
    number: int = Field(gt=0)
    draft: bool = False
    head: Ref
    base: Ref


class PullRequestEvent(_Loose):
    action: str
    number: int = Field(gt=0)
    pull_request: PullRequest
    repository: Repository
    installation: Installation | None = None


class Issue(_Loose):
    number: int = Field(gt=0)
    pull_request: dict[str, Any] | None = None


class Comment(_Loose):
    id: int
    body: str = Field(default="", max_length=MAX_COMMENT_CHARS)
    user: User


class IssueCommentEvent(_Loose):
    action: str
    issue: Issue
    comment: Comment
    repository: Repository
    installation: Installation | None = None


class InstallationEvent(_Loose):
    action: str
    installation: Installation
    repositories: list[Repository] = []
