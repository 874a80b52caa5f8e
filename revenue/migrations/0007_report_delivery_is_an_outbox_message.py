"""A report delivery is an outbox message (billing.outbox.OutboxMessage): queued, sent or failed."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('revenue', '0006_ai_usage_day_moves_to_billing'),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE revenue_reportdelivery SET status = 'queued' WHERE status = 'pending'",
            reverse_sql="UPDATE revenue_reportdelivery SET status = 'pending' WHERE status = 'queued'",
        ),
        migrations.AddField(
            model_name='reportdelivery',
            name='updated_at',
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.AlterField(
            model_name='reportdelivery',
            name='attempts',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='reportdelivery',
            name='error',
            field=models.TextField(blank=True, help_text='The last failure, as the mail server reported it.'),
        ),
        migrations.AlterField(
            model_name='reportdelivery',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('sent', 'Sent'), ('failed', 'Failed')], default='queued', max_length=8),
        ),
    ]
