from django.db import migrations


def fill_email(apps, schema_editor):
    Author = apps.get_model("lintapp", "Author")
    Author.objects.filter(email="").update(email="unknown@example.com")


class Migration(migrations.Migration):
    dependencies = [("lintapp", "0003_rename_and_types")]

    operations = [
        migrations.RunPython(fill_email),
        migrations.RunPython(fill_email, reverse_code=migrations.RunPython.noop),
        migrations.RunSQL(
            "UPDATE lintapp_shelf SET label = 'x' WHERE label = ''",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL('ALTER TABLE "lintapp_shelf" DROP COLUMN "code"'),
    ]
