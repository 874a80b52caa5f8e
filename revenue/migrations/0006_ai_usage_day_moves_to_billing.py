# The AI-usage roll-up is billing's (a roll-up of billing's usage events): revenue lets go of the
# model in the state only. The table, its rows and its triggers are taken over by
# billing/0005_ai_usage_day_moves_to_billing, which renames the table and the functions.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('revenue', '0005_whatif_run'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='AiUsageDay')],
            database_operations=[],
        ),
    ]
