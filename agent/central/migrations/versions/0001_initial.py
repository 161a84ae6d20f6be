"""initial schema: proofs, suspects, reports, commands, roll-ups

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-01 15:35:23.850306
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; SQLite auto-increments only an INTEGER PRIMARY KEY.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('acks',
    sa.Column('id', ROW_ID, autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('jti', sa.String(length=64), nullable=True),
    sa.Column('cmd', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('at_ms', sa.BigInteger(), nullable=True),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device', 'digest', name='uq_acks_digest')
    )
    with op.batch_alter_table('acks', schema=None) as batch_op:
        batch_op.create_index('ix_acks_jti', ['jti'], unique=False)

    op.create_table('commands',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('issued_ms', sa.BigInteger(), nullable=False),
    sa.Column('expires_ms', sa.BigInteger(), nullable=False),
    sa.Column('operator', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=64), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('cmd', sa.String(length=32), nullable=False),
    sa.Column('target_kind', sa.String(length=8), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('args', sa.Text(), nullable=False),
    sa.Column('tamper', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('jti')
    )
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.create_index('ix_commands_cmd_issued', ['cmd', 'issued_ms'], unique=False)

    op.create_table('device_days',
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hb_count', sa.Integer(), nullable=False),
    sa.Column('hb_buckets', sa.Integer(), nullable=False),
    sa.Column('last_bucket', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device', 'day', name='pk_device_days')
    )
    op.create_table('events',
    sa.Column('id', ROW_ID, autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('at_ms', sa.BigInteger(), nullable=True),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device', 'digest', name='uq_events_digest')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_received', ['received_ms'], unique=False)

    op.create_table('heartbeats',
    sa.Column('id', ROW_ID, autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('schedule_version', sa.BigInteger(), nullable=True),
    sa.Column('playing', sa.String(length=200), nullable=True),
    sa.Column('alert_id', sa.String(length=200), nullable=True),
    sa.Column('volume', sa.Integer(), nullable=True),
    sa.Column('outbox', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.create_index('ix_heartbeats_device_received', ['device', 'received_ms'],
                              unique=False)
        batch_op.create_index('ix_heartbeats_received', ['received_ms'], unique=False)

    op.create_table('proof_days',
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('played_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device', 'day', 'outcome', name='pk_proof_days')
    )
    op.create_table('proofs',
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('proof_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.Column('scheduled_ms', sa.BigInteger(), nullable=True),
    sa.Column('started_ms', sa.BigInteger(), nullable=True),
    sa.Column('ended_ms', sa.BigInteger(), nullable=True),
    sa.Column('played_ms', sa.BigInteger(), nullable=False),
    sa.Column('volume', sa.Integer(), nullable=True),
    sa.Column('level_dbfs', sa.Float(), nullable=True),
    sa.Column('heard_dbfs', sa.Float(), nullable=True),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('device', 'proof_id', name='pk_proofs')
    )
    with op.batch_alter_table('proofs', schema=None) as batch_op:
        batch_op.create_index('ix_proofs_at', ['at_ms'], unique=False)

    op.create_table('states',
    sa.Column('id', ROW_ID, autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=True),
    sa.Column('at_ms', sa.BigInteger(), nullable=True),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('agent_version', sa.String(length=64), nullable=True),
    sa.Column('schedule_version', sa.BigInteger(), nullable=True),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device', 'digest', name='uq_states_digest')
    )
    with op.batch_alter_table('states', schema=None) as batch_op:
        batch_op.create_index('ix_states_device_received', ['device', 'received_ms'], unique=False)

    op.create_table('suspect_proofs',
    sa.Column('id', ROW_ID, autoincrement=True, nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('proof_id', sa.String(length=200), nullable=True),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device', 'token_sha256', name='uq_suspect_token')
    )
    with op.batch_alter_table('suspect_proofs', schema=None) as batch_op:
        batch_op.create_index('ix_suspect_received', ['received_ms'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('suspect_proofs', schema=None) as batch_op:
        batch_op.drop_index('ix_suspect_received')

    op.drop_table('suspect_proofs')
    with op.batch_alter_table('states', schema=None) as batch_op:
        batch_op.drop_index('ix_states_device_received')

    op.drop_table('states')
    with op.batch_alter_table('proofs', schema=None) as batch_op:
        batch_op.drop_index('ix_proofs_at')

    op.drop_table('proofs')
    op.drop_table('proof_days')
    with op.batch_alter_table('heartbeats', schema=None) as batch_op:
        batch_op.drop_index('ix_heartbeats_received')
        batch_op.drop_index('ix_heartbeats_device_received')

    op.drop_table('heartbeats')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_received')

    op.drop_table('events')
    op.drop_table('device_days')
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_index('ix_commands_cmd_issued')

    op.drop_table('commands')
    with op.batch_alter_table('acks', schema=None) as batch_op:
        batch_op.drop_index('ix_acks_jti')

    op.drop_table('acks')
