from django.db import migrations, models


class Migration(migrations.Migration):
    """Expand and contract in one release: Author gains email and bio, loses nickname."""

    dependencies = [("lintapp", "0001_initial")]

    operations = [
        # NOT NULL with only a Django-side default: backward-incompatible.
        migrations.AddField("author", "email", models.CharField(max_length=100, default="")),
        # Nullable, or with a database default: safe for the old release.
        migrations.AddField("author", "bio", models.TextField(null=True)),
        migrations.AddField("book", "isbn", models.CharField(max_length=20, db_default="")),
        migrations.RemoveField("author", "nickname"),
    ]
