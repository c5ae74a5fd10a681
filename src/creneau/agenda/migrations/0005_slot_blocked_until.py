from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("agenda", "0004_slot_visit_type_searched_through_free_index")]

    operations = [
        migrations.AddField(
            model_name="slot",
            name="blocked_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
