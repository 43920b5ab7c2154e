# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# <h1 id="tutorial">ArcFace 튜토리얼: 손글씨 숫자로 처음부터 끝까지</h1>
#
# 이 노트북은 가이드에서 하나씩 설명한 조각을 한자리에서 조립합니다. scikit-learn에 들어 있는 손글씨 숫자 데이터로
# 작은 임베딩 모델을 ArcFace 손실로 학습하고, 학습 때 **보지 못한** 숫자들로 검증(verification) 성능, 곧 두 이미지가
# 같은 숫자인지 가리는 능력을 잽니다. 얼굴 인식에서 처음 보는 사람들의 사진 두 장이 같은 사람인지 가리는 상황을
# 작게 흉내 낸 것입니다.
#
# - 데이터: `load_digits`의 8×8 이미지 1,797장. scikit-learn에 들어 있어 내려받지 않습니다. 인터넷이 필요한 것은
#   저장소 밖(Colab 등)에서 `margins.py` 한 파일을 처음 한 번 내려받을 때뿐입니다.
# - 실행 시간: 2코어 CPU에서 1분 안팎입니다.
# - 미리 밝혀 둘 결과: 학습 클래스가 여섯 개뿐인 이 데이터에서는, 처음 보는 숫자를 가리는 데 픽셀을 그대로 쓴 기준선이
#   학습한 임베딩보다 낫습니다. 노트북 끝에서 직접 재 봅니다. 마진이 효과를 내는 조건은
#   [실험 장의 한글 음절 실험](../experiments/#glyph-study)에 있습니다.
# - 마진 코드: 가이드의 테스트를 통과한 `snippets/pytorch/margins.py`를 그대로 씁니다.
#
# ArcFace 손실의 정의와 수치 안정성 이야기는 [ArcFace 장](../arcface/)에 있습니다. 여기서는 직접 돌려 봅니다.

# %% [markdown]
# <h2 id="setup">준비</h2>
#
# 저장소 안에서 실행하면 `snippets/pytorch/margins.py`를 바로 가져오고, Colab처럼 저장소 밖이라면 같은 파일을
# GitHub에서 내려받습니다. 이미 받아 둔 파일이 있으면 다시 받지 않으므로, 새 버전을 받으려면 그 파일을 지우세요.
# 쓰는 것은 두 가지입니다. 정규화된 임베딩과
# 클래스 중심 사이의 코사인을 돌려주는 `CosineClassifier`, 그리고 정답 클래스 열에만 마진을 넣고 모든 열에 스케일 $s$를
# 곱한 로짓을 만드는 `arcface_logits`입니다. 본문의 실행 시간과 숫자는 스레드 2개로 잰 것이라 셀이 스레드 수를 2로
# 고정합니다. 셀은 torch 버전만 출력합니다.

# %%
import pathlib
import sys
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

here = pathlib.Path.cwd()
found = [p / "snippets/pytorch" for p in (here, *here.parents) if (p / "snippets/pytorch/margins.py").exists()]
if found:
    SNIPPETS = found[0]
else:  # outside the repository (Colab): fetch the one file once, next to the notebook
    SNIPPETS = here
    if not pathlib.Path("margins.py").exists():
        REPO = "https://raw.githubusercontent.com/metric-learning-guide/metric-learning-guide/main"
        urllib.request.urlretrieve(f"{REPO}/snippets/pytorch/margins.py", "margins.py")
sys.path.insert(0, str(SNIPPETS))
from margins import CosineClassifier, arcface_logits

torch.manual_seed(0)
torch.set_num_threads(2)  # the running time and the values quoted in the text were measured with 2 threads
print("torch", torch.__version__)

# %% [markdown]
# <h2 id="data">데이터: 학습에 쓰는 클래스와 처음 보는 클래스</h2>
#
# 숫자 0–5는 학습에 쓰는 "아는 사람", 6–9는 평가에만 쓰는 "처음 보는 사람"입니다. 0–5는 다시 학습용과
# 테스트용(25%)으로 나눠, 닫힌 집합(closed-set) 분류 정확도도 함께 봅니다.
#
# 셀은 세 묶음의 크기를 출력합니다. 학습 812장, 테스트 271장, 처음 보는 숫자 714장이고, 이미지 한 장은 픽셀
# 64개입니다.

# %%
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # 1,797 images of 8×8 pixels, scaled to [0, 1]
y = torch.tensor(digits.target)

seen = y < 6  # digits 0–5: the "people" we train on
X_seen, y_seen = X[seen], y[seen]
X_unseen, y_unseen = X[~seen], y[~seen]  # digits 6–9: never shown during training

idx_train, idx_test = train_test_split(np.arange(len(y_seen)), test_size=0.25, stratify=y_seen, random_state=0)
X_train, y_train = X_seen[idx_train], y_seen[idx_train]
X_test, y_test = X_seen[idx_test], y_seen[idx_test]
print(f"train {tuple(X_train.shape)}, test {tuple(X_test.shape)}, unseen {tuple(X_unseen.shape)}")

# %% [markdown]
# <h2 id="model">모델: 백본과 코사인 분류기</h2>
#
# 백본은 픽셀 64개를 32차원 임베딩으로 바꾸는 작은 MLP(64 → 128 → 128 → 32, ReLU, 배치 정규화 없음)로,
# [실험 장의 숫자 실험](../experiments/#model-and-training)과 같은 네트워크입니다. 그 위의 `CosineClassifier`는
# 정규화한 클래스 중심 $\hat{\mathbf{W}}_j$와 정규화한 임베딩 $\hat{\mathbf{x}}$의 코사인
# $\cos\theta_j = \hat{\mathbf{W}}_j^\top \hat{\mathbf{x}}$만 계산하고, 편향은 없습니다. 그래서 모델의 출력은 확률이
# 아니라 코사인입니다. 마진과 스케일은 손실 함수가 학습 중에만 적용합니다.
#
# 하이퍼파라미터도 숫자 실험의 값을 그대로 써서, 이 노트북의 숫자를 실험 장의 표와 견줄 수 있게 했습니다. 스케일
# $s = 16$, 논문 설정값인 마진 $m = 0.5$ 라디안(약 28.6°), 학습률 $10^{-3}$의 Adam, 20 에포크입니다. 얼굴 인식
# 논문들이 쓴 $s = 64$는 클래스가 여섯 개뿐인 여기서는 십중팔구 지나치게 큽니다. 정답이 이기기 시작하면
# 소프트맥스가 곧바로 포화해 학습 신호가 사라지기 때문입니다([스케일 s가 필요한 이유](../angular-margins/#scale),
# [실험에서 s를 16으로 둔 이유](../experiments/#scale)). 이 노트북의 설정에서 $s = 64$를 시험해 보지는 않았지만,
# 클래스가 1,500개인 한글 음절 실험의 [스케일 비교](../experiments/#glyph-studies)(시드 하나)에서도 $s = 64$는 AdaCos
# 값 $\tilde{s}$보다 크게 뒤졌습니다.
#
# 숫자 실험과 다른 점은 셋이고, 모두 코드를 짧게 하려고 바꾼 것입니다.
#
# - 배치: 실험은 클래스마다 같은 장수를 담는 P×K 배치를 쓰고, 여기서는 무작위로 섞은 60장짜리 배치를 씁니다(812장이라
#   에포크마다 마지막 배치는 32장입니다).
# - 옵티마이저: 실험은 학습률을 코사인 스케줄로 0까지 줄이고 Adam의 `eps`를 Keras 기본값인 $10^{-7}$에 맞추지만,
#   여기서는 학습률을 고정하고 PyTorch 기본값($10^{-8}$)을 씁니다.
# - 분할과 닫힌 집합 정확도: 실험은 열 클래스 전체를 먼저 학습용과 테스트용으로 나누고, 그 학습용에서 0–5만
#   골라(811장) 학습하며, 닫힌 집합 정확도는 열 클래스로 따로 학습한 모델을 테스트 450장에서 잽니다. 여기서는 0–5만
#   나누고(812장과 271장), 닫힌 집합 정확도도 뒤에서 검증에 쓰는 바로 그 여섯 클래스 모델로 잽니다.
#
# [한글 음절 실험](../experiments/#glyph-protocol)은 배치 정규화를 넣은 합성곱 백본, 학습률 $4\cdot10^{-3}$,
# $s = 10.3$, 마진 워밍업을 쓰므로, 이 노트북과 견줄 대상은 숫자 실험입니다.


# %%
def make_backbone(embedding_size):
    # The experiments' "mlp" (experiments/architectures.py): 64 -> 128 -> 128 -> embedding, ReLU, no BatchNorm.
    return nn.Sequential(
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, embedding_size),
    )


class ArcFaceModel(nn.Module):
    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.backbone = make_backbone(embedding_size)
        self.head = CosineClassifier(embedding_size, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))  # cosines [B, C]: the margin is applied by the loss, in training only

    def embed(self, x):
        return F.normalize(self.backbone(x), dim=1)


S, M = 16.0, 0.5  # the experiments' scale for 6 classes and the paper's margin (radians), see the text

# %% [markdown]
# <h2 id="train">학습</h2>
#
# 한 스텝은 손실만 빼면 평범한 분류 학습과 같습니다. 정답 클래스의 코사인 $\cos\theta_y$ 자리에 $\cos(\theta_y + m)$을
# 넣고($\theta_y + m > \pi$에서는 [폴백](../arcface/#fallback)을 씁니다), 모든 로짓에 $s$를 곱해 교차 엔트로피에
# 넣습니다.
#
# $$
# L = -\ln \frac{e^{s\cos(\theta_y + m)}}{e^{s\cos(\theta_y + m)} + \sum_{j \ne y} e^{s\cos\theta_j}}
# $$
#
# `train`은 모델과 손실 함수, 학습 이미지와 레이블을 받아 에포크별 평균 손실을 돌려줍니다. 아래 셀은 ArcFace 모델을
# 학습하고, 첫 에포크와 마지막 에포크의 평균 손실과 테스트 이미지의 닫힌 집합 정확도를 출력합니다. 정확도는 마진
# 없는 코사인의 argmax로 잽니다. 마진을 넣은 로짓은 정답 레이블이 있어야 계산되므로 예측이 아닙니다
# ([레이블 누출](../glossary/#label-leakage)).


# %%
def train(model, loss_fn, X, y, epochs=20, batch_size=60, lr=1e-3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = loss_fn(model(X[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
    return history


def arcface_loss(cosine, labels):
    return F.cross_entropy(arcface_logits(cosine, labels, s=S, m=M), labels)


torch.manual_seed(0)
arcface = ArcFaceModel(embedding_size=32, num_classes=6)
arcface_history = train(arcface, arcface_loss, X_train, y_train)
arcface.eval()
with torch.no_grad():
    accuracy = (arcface(X_test).argmax(dim=1) == y_test).float().mean().item()
print(f"loss: first epoch {arcface_history[0]:.3g}, last epoch {arcface_history[-1]:.3g}")
print(f"closed-set test accuracy: {accuracy:.3f}")

# %% [markdown]
# 첫 에포크의 평균 손실은 6 안팎이고, 두 번째 에포크에 1 근처로 떨어진 뒤 마지막 에포크에는 0.001 안팎까지
# 내려갑니다. 학습 이미지가 812장뿐이라 20 에포크면 마진을 두고도 거의 모두 맞힐 수 있기 때문입니다. 닫힌 집합 정확도도
# 0.99 안팎입니다.
#
# 학습한 여섯 숫자를 이렇게 잘 가린다고 해서 처음 보는 숫자도 잘 가린다는 보장은 없습니다. 그것은
# [뒤에서](#verification) 잽니다. 다음 셀은 에포크별 손실을 로그 눈금으로 그립니다.
#
# <!-- alt: 에포크별 ArcFace 평균 손실을 로그 눈금으로 그린 선 그래프. 첫 에포크 6 안팎, 둘째 에포크
# 1 안팎에서 스무째 에포크 0.001 안팎까지 내려갑니다. -->

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(arcface_history) + 1), arcface_history, marker=".")
ax.set_xlabel("epoch")
ax.set_ylabel("ArcFace loss")
ax.set_yscale("log")  # from about 6 down to about 0.001: a linear axis would show only the first two epochs
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# <h2 id="embeddings-on-the-circle">단위원 위의 임베딩</h2>
#
# 임베딩을 2차원으로 줄여 같은 방식으로 학습하면, 정규화된 임베딩이 단위원 위에 놓이므로 그대로 그릴 수 있습니다.
# 2차원 임베딩은 수렴이 느려 에포크를 25로 늘립니다(25 에포크 뒤에도 손실은 조금씩 더 내려갑니다). 임베딩 크기와 에포크
# 수 말고는 설정을 모두 그대로 둡니다. 아래 그림은 테스트 이미지 271장의 임베딩입니다. 볼 것은 각 숫자의 점이 정규화한
# 자기 클래스 중심 $\hat{\mathbf{W}}_j$(원점에서 그은 회색 선분) 주위의 짧은 호(arc)에 얼마나 모이는지입니다.
#
# 원 위에 클래스 여섯 개를 넣으면 자리가 빠듯합니다. 중심 여섯 개가 원을 고르게 나누면 이웃한 중심은 60°
# 떨어집니다. 자기 중심에서 이웃 쪽으로 $\varphi$만큼 떨어진 샘플은 이웃 중심과 $60° - \varphi$ 떨어져 있고, 마진을
# 넘어 자기 클래스로 인정받으려면 $\varphi + 28.6° < 60° - \varphi$(마진 $m = 0.5$ 라디안은 28.6°), 곧
# $\varphi < (60° - 28.6°)/2 \approx 15.7°$여야 합니다. 그래서 클래스마다 중심 양쪽으로 15.7°씩, 합쳐 약 31°만 남고
# 이웃 사이의 28.6°는 마진 띠가 됩니다. 호가 이렇게 좁으니, 학습 이미지를 모두 자기 호 안에 넣은 모델이라도 테스트
# 이미지 일부는 띠 안이나 그 너머로 떨어집니다. 그림에서도 점은 대부분 자기 호에 모이지만, 몇몇은 띠를 넘어 이웃 호에
# 섞입니다([ArcFace 장](../arcface/#geometry)의 2차원 그림도 같습니다).
#
# 앞의 32차원 모델에서는 중심 여섯 개가 서로 90° 이상 떨어질 수 있으므로(서로 직교하기만 해도 90°), 마진 띠를
# 두고도 클래스마다 넉넉한 자리가 남습니다.
#
# <!-- alt: 테스트 이미지 271장의 2차원 임베딩을 단위원 위에 숫자 0–5마다 다른 색으로 찍은 산점도.
# 숫자마다 점들이 원점에서 그은 회색 선분(정규화한 클래스 중심) 주위의 짧은 호에 모입니다. -->

# %%
torch.manual_seed(0)
tiny = ArcFaceModel(embedding_size=2, num_classes=6)
train(tiny, arcface_loss, X_train, y_train, epochs=25)
tiny.eval()
with torch.no_grad():
    points = tiny.embed(X_test).numpy()
    centers = F.normalize(tiny.head.weight, dim=1).numpy()

fig, ax = plt.subplots(figsize=(4.2, 4.2))
ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.7"))
for c in range(6):
    ax.scatter(*points[y_test.numpy() == c].T, s=12, label=str(c))
    ax.plot([0, centers[c, 0]], [0, centers[c, 1]], color="0.3", lw=1)
ax.set_aspect("equal")
ax.set_xlim(-1.2, 1.2)
ax.set_ylim(-1.2, 1.2)
ax.legend(title="digit", fontsize=8, loc="center")
plt.show()

# %% [markdown]
# <h2 id="verification">처음 보는 숫자로 검증하기</h2>
#
# 이제 학습에 쓰지 않은 숫자 6–9의 이미지 714장에서 가능한 모든 쌍의 코사인 유사도를 계산합니다. 같은 숫자 쌍(본인 쌍,
# genuine pair)은 유사도가 높고, 다른 숫자 쌍(타인 쌍, impostor pair)은 낮아야 합니다. 코사인이 임계값 이상인 쌍은
# "같다"고 받아들입니다. 이 절에서 쓰는 용어는 다음과 같고, 자세한 정의와 함정은 [평가와 배포](../evaluation/) 장에
# 있습니다.
#
# - **타인 수락률 FAR**(false accept rate): 타인 쌍 가운데 잘못 받아들인 비율. **본인 수락률 TAR**(true accept rate):
#   본인 쌍 가운데 맞게 받아들인 비율.
# - **ROC 곡선**: 임계값을 움직이며 (FAR, TAR) 점을 이은 곡선([ROC 곡선](../evaluation/#roc)).
# - **TAR@FAR**: FAR을 $10^{-2}$ 같은 목표 이하로 묶었을 때의 TAR([TAR@FAR](../evaluation/#tar-at-far)).
# - **동일 오류율 EER**(equal error rate): FAR과 본인 거부율 FRR(= 1 − TAR)이 같아지는 임계값에서의 오류율. 낮을수록
#   좋습니다([EER](../evaluation/#eer)).
#
# 셀은 쌍의 수(본인 쌍 63,382개와 타인 쌍 191,159개로, 실험 장의 숫자 실험과 같은 쌍입니다), FAR $10^{-2}$과
# $10^{-3}$에서의 TAR과 그때의 임계값, 그리고 EER을 출력합니다.
#
# 배포할 때도 임계값은 이렇게 목표 FAR에서 정합니다. 여기서는 같은 쌍에서 임계값과 그때의 TAR을 함께 읽습니다. ROC
# 곡선의 한 점을 읽는다는 것이 곧 그런 뜻입니다. 다만 이렇게 읽은 임계값이 새 데이터에서 어떤 FAR을 낼지는 알 수
# 없습니다. 그래서 실제로는 임계값을 고르는 [조정용 데이터](../glossary/#validation-set)와 그 FAR을 확인하는 데이터를
# 따로 둡니다([임계값 정하기](../evaluation/#threshold)).
#
# 아래 셀의 `tar_at`과 `eer_of`는 scikit-learn의 `roc_curve`가 내는 점들에 실험 코드의
# [`verification_metrics`](../evaluation/#tar-at-far)와 같은 규칙을 적용합니다. `tar_at`은 FAR이 목표 이하인 점 가운데
# 마지막 점(TAR이 가장 큰 점)을 읽고, `eer_of`는 FAR과 FRR이 가장 가까운 점에서 $(\text{FAR} + \text{FRR})/2$를
# 돌려줍니다. 이 노트북의 네 임베딩에 두 코드를 함께 돌려 보면 출력하는 소수 셋째 자리까지 같습니다.

# %%
from sklearn.metrics import roc_curve


def verification(model):
    """Cosine similarity of every pair of unseen images; returns (FAR, TAR, thresholds) and the pair labels."""
    model.eval()
    with torch.no_grad():
        e = model.embed(X_unseen)
    similarity = e @ e.T
    i, j = torch.triu_indices(len(e), len(e), offset=1)
    same = (y_unseen[i] == y_unseen[j]).numpy()
    far, tar, thresholds = roc_curve(same, similarity[i, j].numpy())
    return far, tar, thresholds, same


def tar_at(far, tar, thresholds, target_far):
    k = np.searchsorted(far, target_far, side="right") - 1  # last point with FAR <= target
    return tar[k], thresholds[k]


far, tar, thresholds, same = verification(arcface)
print(f"{same.sum():,} genuine and {(~same).sum():,} impostor pairs of unseen digits")
for target in (1e-2, 1e-3):
    t, threshold = tar_at(far, tar, thresholds, target)
    print(f"TAR @ FAR={target:g}: {t:.3f}  (accept a pair when cosine >= {threshold:.3f})")


def eer_of(far, tar):
    k = np.argmin(np.abs(far - (1 - tar)))  # the point where FAR and FRR = 1 - TAR are closest
    return (far[k] + 1 - tar[k]) / 2


print(f"EER: {eer_of(far, tar):.3f}")

# %% [markdown]
# 닫힌 집합 정확도는 0.99 안팎이었지만, 처음 보는 숫자에서는 사정이 전혀 다릅니다. FAR $10^{-2}$에서의 TAR은
# 0.2 안팎입니다. 타인 쌍의 1%를 받아들이는 임계값(코사인 0.7 안팎)에서도 본인 쌍은 다섯에 하나꼴로만
# 통과한다는 뜻입니다. EER은 0.3 안팎입니다. 이 값이 얼마나 나쁜지는 다음 절에서 기준선과 견줘 봅니다.

# %% [markdown]
# <h2 id="compare-with-softmax">일반 소프트맥스와 두 기준선에 견주기</h2>
#
# 같은 백본을 정규화도 마진도 없는 선형 분류기(편향 포함)와 교차 엔트로피, 곧 일반 소프트맥스(표와 그림의
# softmax)로 학습해 같은 방식으로 잽니다. 학습하지 않은 기준선 두 개도 나란히 잽니다. 픽셀 64개를 그대로 임베딩으로
# 쓴 것(pixels)과, ArcFace 모델을 첫 스텝 전의 초깃값 그대로 쓴 것(untrained)입니다. 셀은 네 모델의 TAR@FAR과 EER을
# 표로 출력하고, ROC 곡선을 한 그림에 그립니다(점선이 두 기준선).
#
# 결과를 먼저 말하면, 학습한 두 모델 가운데서는 ArcFace가 softmax보다 훨씬 낫습니다. 그러나 가장 나은 것은 픽셀을
# 그대로 쓴 기준선이고, 학습하지 않은 네트워크도 세 지표 모두에서 ArcFace보다 낫습니다(FAR $10^{-3}$의 TAR에서는
# 차이가 작습니다).
#
# 모든 방법을 세 시드로 돌린 [숫자 실험](../experiments/#digits-results)에서도 평균은 같은 순서였습니다. 처음 보는
# 숫자에서 FAR $10^{-2}$의 TAR은 픽셀 0.40, 학습 전 MLP 0.25였고, 학습한 임베딩은 가장 좋은 NormFace가 0.22,
# ArcFace가 0.18, softmax가 0.07이었습니다. 클래스가 여섯 개뿐이면 네트워크는 그 여섯 개를 가르는 데 필요한 방향만
# 배우고, 처음 보는 숫자를 가르는 데 필요한 정보는 버리는 것으로 보입니다.
#
# 각도 마진이 제 몫을 하는 것은 얼굴 인식처럼 학습 클래스가 많을 때입니다. 처음 보는 한글 음절을 검증하는
# [한글 음절 실험](../experiments/#glyph-study)에서 ArcFace는 주 실험(학습 음절 1,500개)의 세 시드 모두에서
# NormFace를 앞섰고, 학습 음절 수를 바꾼 [비교 실험](../experiments/#glyph-studies)(시드 하나)에서는 50개부터 조금
# 앞섰습니다.
#
# <!-- alt: 처음 보는 숫자 6–9에서 ArcFace, 소프트맥스, 원시 픽셀, 학습하지 않은 네트워크의 ROC
# 곡선. 가로축은 로그 눈금의 타인 수락률, 세로축은 본인 수락률이고, 두 기준선은 점선입니다. 타인 수락률이 1에 가까운
# 오른쪽 끝에서 곡선들이 만나기 전까지는 위에서부터 원시 픽셀, 학습하지 않은 네트워크, ArcFace, 소프트맥스
# 순입니다. -->


# %%
class SoftmaxModel(nn.Module):
    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.backbone = make_backbone(embedding_size)
        self.head = nn.Linear(embedding_size, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))

    def embed(self, x):
        return F.normalize(self.backbone(x), dim=1)


torch.manual_seed(0)
softmax = SoftmaxModel(embedding_size=32, num_classes=6)
train(softmax, F.cross_entropy, X_train, y_train)


class Pixels(nn.Module):
    """Baseline: the raw pixels are the embedding (no parameters, no training)."""

    def embed(self, x):
        return F.normalize(x, dim=1)


torch.manual_seed(0)
untrained = ArcFaceModel(embedding_size=32, num_classes=6)  # baseline: the ArcFace network before its first step

fig, ax = plt.subplots(figsize=(4.5, 3.5))
print("           TAR @ FAR=0.01  TAR @ FAR=0.001   EER")  # the labels of the cell above
for name, model in [("pixels", Pixels()), ("untrained", untrained), ("softmax", softmax), ("ArcFace", arcface)]:
    far, tar, thresholds, _ = verification(model)
    tar2, tar3 = (tar_at(far, tar, thresholds, target)[0] for target in (1e-2, 1e-3))
    print(f"{name:10s} {tar2:14.3f}  {tar3:15.3f}  {eer_of(far, tar):.3f}")
    ax.plot(far, tar, label=name, ls=":" if name in ("pixels", "untrained") else "-")
ax.set_xscale("log")
ax.set_xlim(1e-4, 1)
ax.set_xlabel("FAR")
ax.set_ylabel("TAR")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# <h2 id="next-steps">더 해 보기</h2>
#
# - `S`와 `M`을 바꿔 가며, $m$을 키울 때 닫힌 집합 정확도와 처음 보는 숫자의 검증 성능이 각각 어떻게 움직이는지
#   살펴보세요. `M = 0`이면 마진 없는 NormFace가 됩니다. 이 가이드의 `arcface_logits`는 $m$을 $[0, \pi/2)$로 제한해
#   그 밖에서는 `ValueError`를 냅니다. 논문에 있는 제한이 아니라 이 가이드가 둔 제한입니다. 이 범위에서는
#   $\cos m + m\sin m \ge 1$이라 [폴백](../arcface/#fallback)으로 넘어갈 때 정답 로짓이 위로 뛰지 않는다는 것이
#   간단히 보장되기 때문입니다(부등식 자체는 $m \approx 2.33$까지 성립합니다).
# - `margins.py`에서 `cosface_logits`를 가져와 `arcface_loss`에서 `arcface_logits` 대신 쓰면 CosFace가 됩니다. `M`은
#   CosFace 논문이 쓴 값 0.35로 바꾸세요.
# - 2차원 모델 `tiny`의 임베딩 크기를 3으로 바꾸면 단위 구 위의 분포를 볼 수 있습니다. 그림 셀에서 축을
#   `ax = plt.figure(figsize=(5, 5)).add_subplot(projection="3d")`로 만들고, 원을 그리는 `ax.add_patch(...)` 줄을
#   지우고, 중심 선분에 세 번째 좌표 `[0, centers[c, 2]]`를 더하세요. 산점도는 그대로 세 좌표를 받습니다.
