"""Placement and position: existing widgets keep today's inline card; new ones float."""

from django.db import migrations, models

PLACEMENTS = [
    ("floating", "Floating (a launcher button in a corner opens the card)"),
    ("inline", "Inline (the card where the tag is, or in data-container)"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("widgets", "0001_initial"),
    ]

    operations = [
        # Rows that exist get "inline" (what they show today) ...
        migrations.AddField(
            model_name="widget",
            name="placement",
            field=models.CharField(choices=PLACEMENTS, default="inline", max_length=16),
        ),
        # ... and widgets created from now on float.
        migrations.AlterField(
            model_name="widget",
            name="placement",
            field=models.CharField(choices=PLACEMENTS, default="floating", max_length=16),
        ),
        migrations.AddField(
            model_name="widget",
            name="position",
            field=models.CharField(
                choices=[
                    ("bottom-right", "Bottom right"),
                    ("bottom-left", "Bottom left"),
                    ("top-right", "Top right"),
                    ("top-left", "Top left"),
                ],
                default="bottom-right",
                max_length=16,
            ),
        ),
    ]
