"""What one stats process holds: its configuration, the index (written by the indexer, read by the routes through
reader threads), the ethstats gate and registry, and the views over them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from heliogrid_stats.config import StatsConfig
from heliogrid_stats.deployment import Deployment
from heliogrid_stats.ethstats import Gate, NodeRegistry
from heliogrid_stats.indexer import Indexer
from heliogrid_stats.reads import Reads
from heliogrid_stats.store import Store
from heliogrid_stats.views import Views


@dataclass
class AppState:
    config: StatsConfig
    deployment: Deployment
    writer: Store
    reader: Store
    indexer: Indexer
    gate: Gate
    registry: NodeRegistry
    views: Views
    reads: Reads
    task: asyncio.Task[None] | None = None
