"""The `lambdaserve` command: click commands only, one module per command group over one
context (`context`) that builds what each command needs and maps every refusal to the one
exit-code table. Imports anything."""
