from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="note",
            name="author",
            field=models.CharField(blank=True, max_length=80),
        ),
        migrations.AddField(
            model_name="note",
            name="pinned",
            field=models.BooleanField(default=False, help_text="Pinned notes stay on top."),
        ),
        migrations.AlterModelOptions(
            name="note",
            options={"ordering": ["-pinned", "-created_at"]},
        ),
    ]
