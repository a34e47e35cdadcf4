"""The transparency log, chain heads, organisation-signed revocation lists.

* ``log_keys``: the log's Ed25519 signing key, created here (one per hub database);
* ``log_state``, ``log_entries``, ``log_nodes``, ``log_queue``: the Merkle log (hub/tlog.py);
* ``chain_heads``: every chain head the stations publish;
* ``organisations``: the newest revocation list each organisation signed.

Every certificate already stored is appended to the log, in the order the hub received it (then by
id), and a first tree head is signed; an empty database gets the empty tree's head.

Revision ID: 0003_transparency_log
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from certs.jws import kid_of
from certs.keys import ROLE_LOG, role_pem
from certs.merkle import Frontier, leaf_hash
from certs.tlog import format_timestamp, sign_tree_head

revision = "0003_transparency_log"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 5000

_keys = sa.table(
    "log_keys",
    sa.column("id", sa.Integer),
    sa.column("kid", sa.String),
    sa.column("public_pem", sa.Text),
    sa.column("private_pem", sa.Text),
    sa.column("created_at", _TS),
)
_state = sa.table(
    "log_state",
    sa.column("id", sa.Integer),
    sa.column("key_id", sa.Integer),
    sa.column("tree_size", sa.BigInteger),
    sa.column("root_hash", sa.String),
    sa.column("timestamp", sa.String),
    sa.column("tree_head", sa.Text),
)
_entries = sa.table(
    "log_entries",
    sa.column("leaf_index", sa.BigInteger),
    sa.column("certificate_id", sa.String),
    sa.column("appended_at", _TS),
)
_nodes = sa.table(
    "log_nodes",
    sa.column("level", sa.SmallInteger),
    sa.column("idx", sa.BigInteger),
    sa.column("hash", sa.LargeBinary),
)


def _log_tables() -> None:
    op.create_table(
        "log_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kid", sa.String(64), nullable=False, unique=True),
        sa.Column("public_pem", sa.Text, nullable=False),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "log_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("log_keys.id"), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.String(32), nullable=False),
        sa.Column("tree_head", sa.Text, nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column(
            "certificate_id",
            sa.String(36),
            sa.ForeignKey("certificates.certificate_id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("appended_at", _TS, nullable=False),
    )
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    level0 = sa.text("level = 0")
    op.create_index(
        "uq_log_nodes_leaf_hash",
        "log_nodes",
        ["hash"],
        unique=True,
        sqlite_where=level0,
        postgresql_where=level0,
    )
    op.create_table(
        "log_queue",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column(
            "certificate_id",
            sa.String(36),
            sa.ForeignKey("certificates.certificate_id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
    )


def _other_tables() -> None:
    op.create_table(
        "chain_heads",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("station_pk", sa.Integer, sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("station_kid", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_index("ix_chain_heads_station", "chain_heads", ["station_kid", "sequence"])
    op.add_column("organisations", sa.Column("revocation_list", sa.LargeBinary, nullable=True))
    op.add_column("organisations", sa.Column("revocation_list_sha256", sa.String(64), nullable=True))
    op.add_column("organisations", sa.Column("revocation_list_issued_at", sa.String(32), nullable=True))
    op.add_column("organisations", sa.Column("revocation_list_received_at", _TS, nullable=True))


def _new_key(bind: sa.engine.Connection) -> tuple[int, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    bind.execute(
        _keys.insert().values(
            id=1,
            kid=kid_of(key.public_key()),
            public_pem=role_pem(key.public_key(), ROLE_LOG),
            private_pem=pem,
            created_at=datetime.now(UTC),
        )
    )
    return 1, key


def _backfill(bind: sa.engine.Connection) -> Frontier:
    """Append every stored certificate, in received order, in batches (nothing held whole in memory)."""
    frontier = Frontier()
    now = datetime.now(UTC)
    query = sa.text("SELECT certificate_id, digest FROM certificates ORDER BY received_at, certificate_id")
    rows = bind.execute(query.execution_options(stream_results=True, yield_per=_BATCH))
    for batch in rows.partitions(_BATCH):
        nodes: list[dict[str, object]] = []
        entries: list[dict[str, object]] = []
        for cert_id, digest in batch:
            entries.append({"leaf_index": frontier.size, "certificate_id": cert_id, "appended_at": now})
            nodes += [
                {"level": lv, "idx": ix, "hash": h}
                for lv, ix, h in frontier.append(leaf_hash(bytes.fromhex(digest)))
            ]
        bind.execute(_entries.insert(), entries)
        bind.execute(_nodes.insert(), nodes)
    return frontier


def upgrade() -> None:
    bind = op.get_bind()
    _log_tables()
    _other_tables()
    key_id, key = _new_key(bind)
    frontier = _backfill(bind)
    stamp = format_timestamp(datetime.now(UTC))
    head = sign_tree_head(key, frontier.size, frontier.root(), stamp)
    bind.execute(
        _state.insert().values(
            id=1,
            key_id=key_id,
            tree_size=frontier.size,
            root_hash=frontier.root().hex(),
            timestamp=stamp,
            tree_head=json.dumps(head.to_json(), sort_keys=True, separators=(",", ":")),
        )
    )


def downgrade() -> None:
    raise NotImplementedError("the hub's schema is not downgraded: restore a backup instead")
