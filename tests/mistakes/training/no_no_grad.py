"""Evaluation loop: no torch.no_grad().

Mistake: evaluation builds the autograd graph for every batch (memory and time wasted; same numbers).
Component: training loop (evaluate).
Expected effect: identical loss; detectable only by recording torch.is_grad_enabled() inside forward. The message
should name torch.no_grad().
"""


COMPONENT = "evaluate"
EXPECT = "caught"
HINTS = ('no_grad', 'autograd', 'grad')

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
    model.train()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad()
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    return total_loss / len(dataloader)


def evaluate(model, dataloader, criterion, device):
    model.eval()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
        total_loss += loss.item()
    return total_loss / len(dataloader)
