"""drill injects: when a sweep took one for playing, so one a dead worker left is played again

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

import crisis.models.types

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('drill_injects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', crisis.models.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('drill_injects', schema=None) as batch_op:
        batch_op.drop_column('claimed_at')
