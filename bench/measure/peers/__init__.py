"""Peer adapters: other learned video codecs counted under HyTIP's protocol from the user's own checkout."""
from __future__ import annotations

from bench.errors import InputError
from bench.measure.peers.base import PeerAdapter
from bench.measure.peers.dcvc import DCVCDC, DCVCFM, DCVCHEM, DCVCRT, DCVCTCM
from bench.measure.peers.ssf import SSF2020

PEERS = {adapter.name: adapter for adapter in (DCVCTCM(), DCVCHEM(), DCVCDC(), DCVCFM(), DCVCRT(), SSF2020())}


def get_peer(name: str) -> PeerAdapter:
    found = {key.lower(): adapter for key, adapter in PEERS.items()}.get(name.lower())
    if found is None:
        raise InputError(f"peer {name!r}: expected one of {', '.join(PEERS)}")
    return found
