"""An invoice delivery is an outbox message (billing.outbox.OutboxMessage): created_at defaults to now."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_ai_usage_day_moves_to_billing'),
    ]

    operations = [
        migrations.AlterField(
            model_name='invoicedelivery',
            name='created_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
