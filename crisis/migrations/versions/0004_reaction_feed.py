"""reaction feed: poller state, reply errors, indexes for attaching and the processing sweep

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 04:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

import crisis.models.types

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('poll_states',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('since_id', sa.String(length=64), nullable=True),
    sa.Column('wait_until', crisis.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', crisis.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_polled_at', crisis.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('updated_at', crisis.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_poll_states'))
    )
    with op.batch_alter_table('reactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_error', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_reactions_unprocessed', ['incident_id', 'received_at'],
                              unique=False, postgresql_where=sa.text('processed_at IS NULL'),
                              sqlite_where=sa.text('processed_at IS NULL'))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_provider_id'), ['provider_id'], unique=False)
    with op.batch_alter_table('sms_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_recipients_phone'), ['phone'], unique=False)


def downgrade():
    with op.batch_alter_table('sms_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_recipients_phone'))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_provider_id'))
    with op.batch_alter_table('reactions', schema=None) as batch_op:
        batch_op.drop_index('ix_reactions_unprocessed')
        batch_op.drop_column('reply_error')
    op.drop_table('poll_states')
