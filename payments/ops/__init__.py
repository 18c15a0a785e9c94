"""Operations: what admins do and see (corrections, queues, figures), health, retention and the
set-up check."""
