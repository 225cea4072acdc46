"""Built-in knowledge the checks are compiled from: ad phrases by strength, call-to-action
phrases, scam-warning context, account aliases, link allow-list, suspicious hosts.

Everything here is data. Admins add to it (and take from it) in YAML; nothing is tuned per
group in code. Phrases are written in simplified Chinese, lower case, without separators:
they are matched against the "squeezed" form of a message (see `textforms`), so spacing,
emoji between characters, full-width letters and traditional characters do not matter.

Weights and why: an ad is an *offer* plus a *way to reach* the seller. A phrase that is an
ad on its own ("刷单", "代开发票") weighs as much as the spam threshold; words that also occur
in ordinary talk ("兼职", "免费", "招聘") weigh 1 or 2, so they count only next to a call to
action, a contact channel or other offer words.
"""

from __future__ import annotations

# --- offers --------------------------------------------------------------------------------

# An ad (or scam) on their own, whatever else the message says. Weight = the threshold.
STRONG = (
    # easy money / task scams
    "刷单", "刷信誉", "刷好评", "日赚", "躺赚", "稳赚", "网赚", "赚钱项目", "赚钱门路",
    "月入过万", "月入上万", "月入万元", "日入过百", "日入过千", "日入百元", "日入千元", "收入过万",
    "零投资", "零成本创业", "手机就能做", "手机就能赚", "一部手机就能", "在家就能赚",
    "宝妈兼职", "学生兼职", "兼职日结", "打字员", "点赞员", "抖音点赞", "试玩员", "手工活外发",
    "带你赚钱", "带你赚", "一单一结", "工资日结",
    # services that are illegal or near enough
    "代开发票", "代开各类发票", "开票联系", "办证", "办假证", "刻章", "包办包过", "代考", "替考", "包过班",
    "保过班", "考前答案", "答案考前", "改分", "代写论文", "论文代写", "代做毕设", "论文发表", "包录用",
    "学历不用考试", "两年拿证", "答案提前", "提前出答案",
    "征信修复", "征信洗白", "信用卡套现", "套现", "黑户贷款", "黑户也能",
    "无抵押贷款", "无抵押", "秒批", "秒下款", "当天放款", "放款快", "微信解封", "解封微信", "代还信用卡", "信用卡代还",
    # gambling, porn, dodgy finance
    "百家乐", "时时彩", "北京赛车", "彩票计划", "菠菜", "真人荷官", "真人娱乐", "娱乐平台", "娱乐城", "棋牌娱乐",
    "提现秒到", "提款秒到", "注册就送", "注册送", "充值返利", "首充返利",
    "裸聊", "约炮", "同城约", "福利姬", "成人视频", "情趣用品",
    "荐股", "牛股", "股票群", "内幕消息", "带单", "喊单", "稳赚不赔", "保本保息", "日收益", "usdt",
    "高仿", "一比一复刻", "a货",
    # selling accounts, fans, traffic
    "出售微信号", "收微信号", "收购微信号", "租微信号", "回收微信号", "实名号", "高价收号",
    "刷粉", "涨粉", "买粉", "精准粉", "刷量", "刷下载量", "刷star", "科技辅助", "透视挂", "外挂出售",
    "出售外挂", "代充", "代打上分", "代肝", "代练上分",
    # recruiting into schemes and other groups
    "诚招代理", "招代理", "代理招募", "招募代理", "加盟代理", "代理加盟", "一件代发", "微商代理", "零门槛加盟",
    "进群领", "加群领", "进群免费", "扫码进群", "扫码加群", "扫码领", "扫码加好友", "长按识别", "识别二维码",
    "点击领取", "点我领取", "领取福利", "福利群", "红包群", "返利群", "助力群",
    "进群方式",
    # health-product ads
    "无效退款", "月瘦", "不反弹", "瘦身方案", "增高秘方", "丰胸", "壮阳", "祛斑", "不节食不运动",
)

# Offer words that also occur in ordinary talk: weight 1 (mild) or 2 (rarely innocent).
OFFER = {
    # money and work
    "兼职": 1, "日结": 2, "佣金": 2, "提成": 1, "返佣": 2, "返现": 2, "返利": 2, "收益": 1, "回报": 1,
    "高回报": 2, "赚钱": 1, "挣钱": 1, "副业": 1, "高薪": 1, "招聘": 1, "诚聘": 1, "招人": 1,
    "诚招": 2, "急招": 1, "招募": 1, "在家办公": 1, "时间自由": 2, "无需经验": 2, "零基础": 1,
    "不收费": 1, "不收任何费用": 2, "无需押金": 2, "不交押金": 2, "不用囤货": 2, "不用投资": 2,
    "投资": 1, "理财": 1, "年化": 2, "贷款": 1, "借款": 1, "下款": 2, "额度": 1, "利息低": 2,
    "机会难得": 2, "月入": 1, "日入": 1, "好项目": 1, "急用钱": 2, "缺钱": 1, "炒币": 2, "翻倍": 1,
    "变现": 2, "带货": 1, "引流": 1, "加入我们": 1, "团队": 1, "合伙人": 1, "本店": 1, "新品上市": 1,
    "欢迎咨询": 2, "欢迎选购": 2, "欢迎订购": 2, "欢迎来电": 2, "欢迎加盟": 2, "欢迎合作": 1, "包治": 2, "根治": 1,
    "陪聊": 2, "寂寞": 1, "游戏币": 1, "金币": 1, "出号": 1, "全套": 1,
    "精准": 1, "客户资源": 2, "定制": 1, "手机号数据": 2, "退费": 1, "理赔": 1, "客服微信": 2, "添加客服": 2,
    "价格便宜": 1, "价格实惠": 1, "价格优惠": 1, "代刷": 2, "代跑": 1,
    # the vocabulary of selling a service
    "打折": 1, "同学价": 1, "员工价": 1, "友情价": 1, "内部价": 1, "在卖": 1, "房源": 1, "中介": 1, "优惠价": 1,
    "微信同号": 2, "电话同微信": 2, "上门服务": 1, "全国包邮": 1,
    "产品": 1, "品牌": 1, "招商": 1, "源头": 1, "工厂": 1, "出厂价": 2, "成本价": 1, "底价": 1, "特惠": 1,
    "活动价": 1, "会员价": 1, "爆款": 1, "热卖": 1, "热销": 1, "促销": 1, "新品": 1, "上新": 1, "现货": 1,
    "送货上门": 1, "包送货": 1, "包安装": 1, "免费安装": 1, "免费上门": 1, "免费测量": 1, "免费设计": 1,
    "免费试用": 1, "试用装": 1, "收费合理": 2, "价格合理": 1, "价格好说": 1, "价格美丽": 1, "便宜出": 2,
    "低价出": 2, "便宜卖": 1, "高价": 1, "诚心要": 2, "欢迎到店": 2, "到店": 1, "新店开业": 2, "开业": 1,
    "会员卡": 1, "储值": 1, "充值送": 2, "赠送": 1, "即送": 1, "就送": 1, "中奖": 1, "收入可观": 2,
    "高收入": 2, "轻松赚": 2, "利润": 1, "利润高": 2, "带你": 1, "创业": 1, "跨境电商": 1, "直播带货": 1,
    "关注公众号": 1, "内部": 1, "渠道": 1, "售后": 1, "支持验货": 1, "随叫随到": 2, "厂家直销": 2, "排毒": 1,
    "特效": 1, "神药": 2, "收益高": 2, "扫码进店": 2, "扫码付款": 2, "扫码支付": 1, "自动发货": 2,
    "手工活": 2, "在家就能做": 2, "零花钱": 1, "快排": 2, "上首页": 2, "不上不收费": 2, "不成功不收费": 2,
    "专柜": 1, "大量": 1, "无购物": 1, "便宜": 1, "折起": 1, "一手": 1, "现金结算": 2, "当面交易": 1,
    # shop talk
    "代理": 1, "加盟": 1, "代购": 1, "批发": 1, "厂家": 1, "直销": 1, "工厂直销": 2, "厂家直供": 2, "原厂直供": 2,
    "一手货源": 2, "货源": 1, "微商": 1, "正品": 1, "保真": 1, "假一赔十": 2, "清仓": 1, "甩卖": 1, "低价": 1,
    "全网最低": 2, "最低价": 1, "特价": 1, "秒杀": 1, "抢购": 1, "折扣": 1, "优惠": 1, "优惠券": 2, "大额券": 2,
    "领券": 2, "包邮": 1, "限时": 1, "仅限": 1, "名额有限": 2, "限额": 1, "限量": 1, "先到先得": 1, "手慢无": 1,
    "出售": 1, "高价回收": 2, "回收": 1, "收购": 1, "转让": 1, "接单": 1, "外包": 1, "代办": 2, "代报名": 2,
    "代订": 1, "包中签": 2, "内部名额": 2, "内部渠道": 2, "包上": 1, "包就业": 2, "保录": 2, "包过": 2, "保过": 2,
    "押题": 1, "培训班": 1, "培训": 1, "线上课": 1, "体验课": 1, "学费": 1, "不收学费": 2, "题库": 1,
    "速成班": 1, "冲刺班": 1, "训练营": 1, "不封号": 2, "安全不封": 2,
    "仅剩": 1, "名额仅剩": 2, "只剩": 1, "立减": 1, "大酬宾": 2, "开业酬宾": 2, "买一送一": 1, "买二送一": 1,
    "扫码购买": 2, "扫码下单": 2, "扫码抢购": 2, "扫码报名": 2, "扫码预约": 2, "扫码咨询": 2, "诚邀": 1,
    "破解": 2, "永久免费": 2, "翻墙": 2,
    # gifts and lures
    "免费": 1, "福利": 1, "红包": 1, "现金": 1, "礼包": 1, "送会员": 1, "抽奖": 1, "领取": 1, "免费送": 1,
    "免费体验": 1, "免费试听": 1, "首月免费": 1, "白送": 2, "零元购": 2, "0元购": 2,
    # health and beauty
    "减肥": 1, "瘦身": 1, "减脂": 1, "美白": 1, "祛痘": 1, "保健": 1, "秘方": 2, "纯中药": 1,
    # games and accounts
    "外挂": 1, "私服": 1, "代练": 1, "陪玩": 1, "搬砖": 1, "挂机": 1, "充值": 1, "折扣平台": 2, "cdk": 1,
    "账号": 1, "粉丝号": 2, "满v": 1, "卖号": 2, "自瞄": 2, "互砍": 2,
    "免费领取": 1, "在家赚钱": 2, "财富自由": 1, "拉你进群": 2, "群号": 1,
}

# Calls to action: how the reader is told to respond. Weight 1 each.
CALL_TO_ACTION = (
    "私聊", "私信", "私我", "私戳", "滴滴", "加我", "找我", "联系我", "咨询", "详询", "详聊", "了解一下", "了解详情",
    "有意者", "有意向", "有意的", "有兴趣", "感兴趣", "需要的", "想要的", "想了解", "点击", "点开", "戳链接",
    "链接", "进群", "扫码", "扫一扫", "备注", "速来", "速抢", "抓紧", "报名", "预约", "订购", "下单", "下载",
    "注册", "邀请码", "热线", "请添加", "详情", "了解更多", "戳我", "扣1", "想学的", "要的来", "私v",
    "联系电话", "联系方式", "电话", "加好友", "看朋友圈", "朋友圈",
)

# Someone vouching for a third party ("推荐个搬家师傅，人很好，我上次找的") gives a phone
# number and a price the way an ad does; the testimony is what sets it apart.
VOUCHING = (
    "人很好", "人挺好", "人不错", "挺靠谱", "很靠谱", "我上次", "上次找", "我找的", "我找过", "我家用的", "我家用过",
    "我用过", "我请的", "我们家请", "手艺不错", "手艺好", "我之前找",
)

# A message that warns *about* scams ("群里别信刷单的，都是骗子") quotes the same words.
SCAM_WARNING = (
    "骗子", "诈骗", "骗局", "被骗", "上当", "别信", "不要信", "千万别", "千万不要", "小心", "谨慎", "警惕",
    "防骗", "反诈", "举报", "套路", "别上当",
)

# --- contact channels ----------------------------------------------------------------------

# Ways of writing "WeChat" / "QQ" that only exist to dodge filters. Matched on the squeezed
# form; each maps to the account it stands for.
OBFUSCATED_ACCOUNT = {
    "v信": "wechat", "vx": "wechat", "wx": "wechat", "薇信": "wechat", "嶶信": "wechat", "溦信": "wechat",
    "徽信": "wechat", "威信": "wechat", "维信": "wechat", "微芯": "wechat", "薇芯": "wechat", "v芯": "wechat",
    "薇": "wechat", "卫星": "wechat", "绿泡泡": "wechat", "🛰": "wechat", "威x": "wechat", "薇x": "wechat",
    "扣扣": "qq", "蔻蔻": "qq", "抠抠": "qq", "企鹅": "qq", "扣": "qq",
}
PLAIN_ACCOUNT = {"微信": "wechat", "微信号": "wechat", "qq": "qq", "qq号": "qq", "q": "qq", "v": "wechat",
                 "tg": "telegram", "telegram": "telegram", "飞机": "telegram"}

# "Add" written to dodge filters: ➕, +, homophones of 加.
ADD_VERBS_PLAIN = ("加", "添加", "加个", "加一下", "加下", "加我")
ADD_VERBS_OBFUSCATED = ("+", "伽", "嘉", "珈", "茄")

# --- links ---------------------------------------------------------------------------------

# Sites ordinary members link to all day. A subdomain is covered by its parent.
ALLOWED_DOMAINS = (
    "github.com", "gitee.com", "githubusercontent.com", "gitlab.com", "bilibili.com", "b23.tv", "zhihu.com",
    "docs.qq.com", "wj.qq.com", "mp.weixin.qq.com", "weixin.qq.com", "v.qq.com", "douban.com", "weibo.com",
    "weibo.cn", "xiaohongshu.com", "xhslink.com", "yuque.com", "shimo.im", "kdocs.cn", "feishu.cn",
    "baidu.com", "csdn.net", "cnblogs.com", "juejin.cn", "jianshu.com", "segmentfault.com", "oschina.net",
    "stackoverflow.com", "python.org", "kubernetes.io", "docker.com", "mozilla.org", "wikipedia.org",
    "gov.cn", "edu.cn", "12306.cn", "neea.edu.cn", "people.com.cn", "xinhuanet.com", "thepaper.cn", "163.com",
    "sohu.com", "sina.com.cn", "ifeng.com", "qq.com", "mafengwo.cn", "ctrip.com", "dianping.com", "meituan.com",
    "amap.com", "gotokeep.com", "strava.com", "nga.cn", "huodongxing.com", "apple.com", "microsoft.com",
    "google.com", "youtube.com",
)

# Shops and apps members share all day: allowed for established members, but counted as a
# (weak) contact channel in ad scoring, and still a link for the new-member rule.
COMMERCE_DOMAINS = (
    "jd.com", "3.cn", "taobao.com", "tmall.com", "tb.cn", "pinduoduo.com", "yangkeduo.com", "vip.com", "suning.com",
    "dangdang.com", "amazon.cn", "douyin.com", "iesdouyin.com", "kuaishou.com", "youzan.com", "weidian.com",
    "ele.me", "pdd.cn", "dewu.com", "xianyu.com", "goofish.com", "jd.hk", "1688.com",
)

# Link shorteners hide where a link goes; ordinary members rarely need one.
SHORTENERS = (
    "t.cn", "dwz.cn", "url.cn", "suo.im", "sina.lt", "0x3.me", "bit.ly", "tinyurl.com", "is.gd", "goo.gl",
    "t.ly", "rb.gy", "cutt.ly", "w.url.cn", "mrw.so", "u.nu", "ow.ly",
)

# Cheap top-level domains that throwaway ad sites favour.
SUSPICIOUS_TLDS = (
    "xyz", "top", "vip", "icu", "club", "site", "online", "shop", "store", "fun", "buzz", "cyou", "rest",
    "monster", "win", "bid", "loan", "work", "click", "link", "ren", "wang", "tk", "ml", "ga", "cf", "gq", "pw",
    "cc", "cam", "bar", "sbs", "lol", "gdn", "mom",
)

# Top-level domains recognised in text written without a scheme ("abc.com/x").
KNOWN_TLDS = (
    "com", "cn", "net", "org", "io", "me", "info", "biz", "co", "tv", "app", "dev", "so", "im", "us", "uk",
    "hk", "tw", "jp", "kr", "de", "ru", "in", "ai", "gg", "to", "la", "edu", "gov", "mobi", "pro", "asia",
    *SUSPICIOUS_TLDS,
)
