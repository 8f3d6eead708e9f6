"""An environment's networks: where its CIDRs are, which blocks are free, carving one from a pool.

Pure (``ipaddress`` only). Used by ``strataflow.blueprints`` when ``strata env new`` allocates
or re-allocates an environment's network.

Where strataflow looks. An environment's networks are the CIDRs in its ``variables``: a value
that is one CIDR (``vpc_cidr: 10.10.0.0/16``), several in one string separated by commas
(``public_subnets: 10.10.0.0/20,10.10.16.0/20``, the form the sample's templates take), or a
YAML list of them. That is where the sample keeps them and the only place a blueprint may
allocate (``${allocate ...}`` holes live under ``variables:``), so "every existing
environment's CIDRs" is always the same, small, predictable set. A ``/0`` (``0.0.0.0/0``,
``::/0``: "anywhere", an ingress rule, not a network of the environment) is not counted; any
other CIDR there is, a peering range included, since a new network overlapping it would
route wrongly too. Component override parameters and cloud settings are not searched: they
hold rules and ids, not the environment's own address space.

Allocation is first fit: the lowest block of the asked size in the pool that overlaps no
taken network (IPv4 or IPv6; networks of the other version never collide), found by jumping
over taken ranges rather than trying every block, so a /24 out of a /8 is as quick as a /16.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PRIVATE_RANGES: tuple[Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
"""Address space meant for private networks (RFC 1918, RFC 6598, RFC 4193)."""

_SEPARATOR = re.compile(r"(\s*,\s*)")


class Exhausted(ValueError):
    """The pool has no free block of the asked size."""


@dataclass(frozen=True)
class Found:
    """One CIDR of an environment: whose, where (``variables.vpc_cidr``), which network."""

    env: str
    path: str
    network: Network

    def describe(self) -> str:
        return f"{self.env}'s {self.network} ({self.path})"


def parse(text: str) -> Network | None:
    """``text`` as a network when it is CIDR notation (``10.0.0.0/16``), else None."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def networks_in(value: Any) -> list[Network]:
    """The networks a variable's value holds: one CIDR, a comma-separated string of them, or a list.

    A string counts only when every comma-separated part is a CIDR (``"see 10.0.0.0/8"`` does not).
    """
    if isinstance(value, list):
        return [net for item in value for net in networks_in(item)]
    if not isinstance(value, str):
        return []
    parts = [parse(part) for part in value.split(",")]
    found = [part for part in parts if part is not None]
    if len(found) != len(parts):
        return []
    return [net for net in found if net.prefixlen > 0]


def find(env: str, variables: Mapping[str, Any]) -> list[Found]:
    """Every network in an environment's variables, in the order written."""
    return [Found(env, f"variables.{key}", net) for key, value in variables.items() for net in networks_in(value)]


def overlapping(network: Network, taken: Iterable[Found]) -> Found | None:
    """The first taken network ``network`` overlaps, if any."""
    for found in taken:
        if found.network.version == network.version and found.network.overlaps(network):
            return found
    return None


def allocate(pool: Network, prefix: int, taken: Iterable[Network]) -> Network:
    """The lowest ``/prefix`` block of ``pool`` that overlaps none of ``taken``; raises Exhausted."""
    if not pool.prefixlen <= prefix <= pool.max_prefixlen:
        raise ValueError(f"a /{prefix} does not fit in {pool}; give a prefix from /{pool.prefixlen} to /{pool.max_prefixlen}")
    size = 1 << (pool.max_prefixlen - prefix)
    spans = sorted(
        (int(net.network_address), int(net.broadcast_address))
        for net in taken
        if net.version == pool.version and net.overlaps(pool)
    )
    start, last = int(pool.network_address), int(pool.broadcast_address)
    while start + size - 1 <= last:
        end = start + size - 1
        blocking = [high for low, high in spans if low <= end and high >= start]
        if not blocking:
            return type(pool)((start, prefix))
        start = (max(blocking) // size + 1) * size
    raise Exhausted(f"{pool} has no free /{prefix} left")


def subnets(block: Network, prefix: int, indexes: Sequence[int]) -> list[Network]:
    """The ``indexes``-th ``/prefix`` blocks of ``block`` (0 is the first); ValueError when one does not fit."""
    if prefix < block.prefixlen or prefix > block.max_prefixlen:
        raise ValueError(f"a /{prefix} subnet does not fit in {block}")
    count = 1 << (prefix - block.prefixlen)
    for index in indexes:
        if not 0 <= index < count:
            raise ValueError(f"{block} holds {count} /{prefix} subnets (0 to {count - 1}); there is no number {index}")
    size = 1 << (block.max_prefixlen - prefix)
    base = int(block.network_address)
    return [type(block)((base + index * size, prefix)) for index in indexes]


def translate(network: Network, old: Network, new: Network) -> Network:
    """``network`` (inside ``old``) moved to the same offset inside ``new``; ValueError when it does not fit."""
    offset = int(network.network_address) - int(old.network_address)
    moved_start = int(new.network_address) + offset
    moved = type(new)((moved_start, network.prefixlen)) if network.version == new.version else None
    if moved is None or not moved.subnet_of(new):  # type: ignore[arg-type]
        raise ValueError(f"{network} (inside {old}) does not fit in {new}")
    return moved


def rewrite(value: Any, change: Callable[[Network], Network]) -> Any:
    """``value`` with each CIDR replaced by ``change(cidr)``, keeping its form (string, separators, list)."""
    if isinstance(value, list):
        return [rewrite(item, change) for item in value]
    if not isinstance(value, str) or not networks_in(value):
        return value
    pieces = _SEPARATOR.split(value)
    return "".join(piece if index % 2 else str(change(_parsed(piece))) for index, piece in enumerate(pieces))


def _parsed(text: str) -> Network:
    found = parse(text)
    assert found is not None  # rewrite only splits strings networks_in accepted
    return found


def outermost(networks: Iterable[Network]) -> list[Network]:
    """The networks contained in no other one of them (the blocks; the rest are their subnets), in order, once."""
    listed = list(dict.fromkeys(networks))
    return [
        net
        for net in listed
        if not any(other != net and other.version == net.version and net.subnet_of(other) for other in listed)  # type: ignore[arg-type]
    ]


def pool_for(block: Network, pools: Iterable[Network]) -> Network | None:
    """Where to find another block like ``block``: the smallest pool holding it, else its private range."""
    holding = [pool for pool in pools if pool.version == block.version and block.subnet_of(pool)]  # type: ignore[arg-type]
    if holding:
        return min(holding, key=lambda pool: pool.num_addresses)
    return next(
        (space for space in PRIVATE_RANGES if space.version == block.version and block.subnet_of(space)),  # type: ignore[arg-type]
        None,
    )


def walk_variables(variables: Mapping[str, Any]) -> Iterator[tuple[str, list[Network]]]:
    """Each variable that holds networks, with them."""
    for key, value in variables.items():
        found = networks_in(value)
        if found:
            yield key, found


__all__ = [
    "PRIVATE_RANGES",
    "Exhausted",
    "Found",
    "Network",
    "allocate",
    "find",
    "networks_in",
    "outermost",
    "overlapping",
    "parse",
    "pool_for",
    "rewrite",
    "subnets",
    "translate",
    "walk_variables",
]
