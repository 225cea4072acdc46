"""Revision files; each plugin branch starts from 0001_core."""
