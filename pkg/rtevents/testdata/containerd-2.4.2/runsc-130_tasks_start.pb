
›ÅÖØ²æ­İk8s.io/tasks/start"e
containerd.events.TaskStartF
@6819301b1a2facc8eadd618332d832e528b58cc0f068c432423efaa8425599d9ë”*