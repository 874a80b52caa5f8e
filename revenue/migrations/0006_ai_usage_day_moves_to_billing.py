# The AI-usage roll-up is billing's now (billing 0005 made billing_aiusageday, its functions and
# triggers, and filled it from the events). Revenue drops its old copy: the triggers and functions of
# revenue 0004 and the revenue_aiusageday table. Irreversible: going back would need the roll-up
# rebuilt from the events under revenue's old functions, which this migration no longer carries.

from django.db import migrations

DROP_REVENUE_COPY = """
DROP TRIGGER IF EXISTS usage_event_ai_usage_insert ON billing_usageevent;
DROP TRIGGER IF EXISTS usage_event_ai_usage_update ON billing_usageevent;
DROP TRIGGER IF EXISTS usage_event_ai_usage_delete ON billing_usageevent;
DROP FUNCTION IF EXISTS revenue_ai_usage_day_sync();
DROP FUNCTION IF EXISTS revenue_ai_usage_rebuild(bigint);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('revenue', '0005_whatif_run'),
        ('billing', '0005_ai_usage_day_moves_to_billing'),
    ]

    operations = [
        migrations.RunSQL(DROP_REVENUE_COPY),
        migrations.DeleteModel(name='AiUsageDay'),
    ]
