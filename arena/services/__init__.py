"""Domain logic as plain functions: views, consumers, tasks, admin and commands call these."""
