"""Who may use the admin API: its keys, their roles and tenant binding."""
