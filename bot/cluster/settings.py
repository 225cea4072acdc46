"""The `cluster:` section of the bot config: several accounts sharing one PostgreSQL."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.core.health import HealthSettings


class ClusterSettings(BaseModel):
    """Off by default: one account on its own needs no leases (and no database round trips
    on the message path)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # A process that dies (or stops renewing) is replaced within this time. Leases are
    # renewed every third of it and run out two thirds of it after their last renewal, so a
    # renewal may fail once without losing anything, and the others, checking every third,
    # take over by the end of it.
    lease_ttl: float = Field(30.0, ge=1, le=600)
    # An on-duty process stops acting this long before its lease ends by its own clock, so an
    # action already on its way lands before another account may take over.
    safety_margin: float = Field(5.0, ge=0)
    # group id -> the account (its bot id) that holds the duty there whenever it is running
    # and in the group; while it is not, the other accounts in the group take turns as usual.
    pinned: dict[str, str] = Field(default_factory=dict)
    # When this account counts as in trouble (rate limits, ban, disconnected) and hands its
    # duties over (bot.core.health); also what the 账号状态 command and the digest report.
    health: HealthSettings = Field(default_factory=HealthSettings)
    # An action handed to the account on duty in another group (a relay line, a keyword
    # invite) that no account has taken after this many seconds is dropped as expired: a
    # relay line minutes late is worse than none.
    handoff_ttl: float = Field(300.0, ge=5, le=86_400)
    # What arrived in a group while its account on duty was dead (before another took over) is
    # answered by the new one if it is at most this many seconds old then (0: never). See
    # bot/cluster/catchup.py.
    catch_up_within: float = Field(60.0, ge=0, le=3_600)
    # At most this many such events are kept in memory per process (the oldest go first).
    catch_up_events: int = Field(10_000, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _margin_fits(self) -> ClusterSettings:
        if self.safety_margin * 3 >= self.lease_ttl:
            raise ValueError(
                f"safety_margin ({self.safety_margin:g} s) must be less than a third of lease_ttl "
                f"({self.lease_ttl:g} s): the lease would end before the next renewal"
            )
        for group_id, account_id in self.pinned.items():
            if not group_id.strip() or not account_id.strip():
                raise ValueError("pinned: group and account ids must not be empty")
        return self

    @property
    def renew_every(self) -> float:
        return self.lease_ttl / 3

    @property
    def lease_seconds(self) -> float:
        """How long a lease row lasts after a renewal (`expires_at = now() + this`)."""
        return self.lease_ttl - self.renew_every
