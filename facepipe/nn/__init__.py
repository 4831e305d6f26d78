"""Network architectures (torch ``nn.Module``s) and the loaders that put weights into them.

Import the module you need (``facepipe.nn.expression``...): each one imports torch.
"""
