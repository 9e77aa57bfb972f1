from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lintapp", "0004_data")]

    operations = [
        migrations.DeleteModel("Shelf"),
        migrations.AddConstraint(
            "author", models.UniqueConstraint(fields=["name"], name="author_name_uniq")
        ),
    ]
