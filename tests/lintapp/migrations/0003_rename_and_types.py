from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lintapp", "0002_author_email")]

    operations = [
        migrations.RenameField("book", "title", "name"),
        # Narrowed: backward-incompatible. Widened: safe.
        migrations.AlterField("author", "name", models.CharField(max_length=30)),
        migrations.AlterField("book", "name", models.CharField(max_length=200)),
        # NULL allowed before, not after.
        migrations.AlterField("author", "bio", models.TextField(default="")),
        migrations.AddIndex("book", models.Index(fields=["name"], name="book_name_idx")),
    ]
