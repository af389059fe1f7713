"""The control loop both shells run: observe -> decide -> act, with its ports."""
