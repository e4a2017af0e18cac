def latent_shape(height, width, factor):
    return height // factor, width // factor
