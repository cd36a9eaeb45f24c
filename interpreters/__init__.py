"""The roster: interpreters, their languages and skills, and their live presence."""
