from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels", "0004_agents_api_clients")]

    operations = [
        migrations.AddField(
            model_name="contract",
            name="holds_at_once",
            field=models.PositiveIntegerField(
                default=20,
                help_text="0: no limit. Holds taken in a day are also limited to twice the bookings per day.",
                verbose_name="slots on hold at once",
            ),
        ),
    ]
