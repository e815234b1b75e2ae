"""Network drivers: each creates and deletes one kind of network's kernel objects."""
