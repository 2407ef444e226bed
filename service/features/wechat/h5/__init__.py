"""Mobile H5 pages for the WeChat channel (Chinese, large type, high contrast): start, consent, card step with
instant OCR feedback, video step with camera preview and one-action-at-a-time challenge, result."""
