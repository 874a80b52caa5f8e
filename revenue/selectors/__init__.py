"""Revenue metrics, computed set-wise in PostgreSQL. Every selector takes ``tenant=`` explicitly."""
